// Package version says which build of driftmon is running: the release version, commit
// and build date that `make build` stamps into the binary, and what the Go toolchain
// recorded in it. `driftmon version` prints it and /metrics exports it as
// driftmon_build_info, so a dashboard can tell which build produced a figure. It imports
// the standard library only, so any package may use it.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Set at link time, e.g. by `make build`:
//
//	go build -ldflags "-X github.com/driftmon/driftmon/internal/version.version=v0.1.0
//	  -X github.com/driftmon/driftmon/internal/version.commit=$(git rev-parse HEAD)
//	  -X github.com/driftmon/driftmon/internal/version.date=2026-12-01T10:00:00Z"
//
// Empty when the binary was built without them (go build, go install, go run).
var (
	version string
	commit  string
	date    string
)

// Devel is the version of a binary whose version nobody stamped and whose module
// version the go command could not tell, as the go command itself writes it.
const Devel = "(devel)"

// Info is one build of driftmon.
type Info struct {
	// Version is the version stamped at link time, else the main module's version as
	// the go command recorded it (a tag or pseudo-version for `go install
	// module@version`), else Devel.
	Version string
	// Commit is the VCS revision stamped at link time, else the one the go command
	// recorded (vcs.revision, when it built inside a checkout with -buildvcs); empty
	// when unknown.
	Commit string
	// Modified is true when the go command recorded uncommitted changes in the
	// checkout it built (vcs.modified).
	Modified bool
	// Date is the build time stamped at link time (RFC 3339); empty when not stamped.
	Date string
	// GoVersion is the Go toolchain that built the binary, e.g. "go1.26.8".
	GoVersion string
	// Platform is the operating system and architecture, e.g. "linux/amd64".
	Platform string
}

// Read returns this binary's build.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return read(bi, version, commit, date)
}

// read merges what the linker stamped with what the go command recorded in bi (nil
// when the binary carries no build information); stamped values win.
func read(bi *debug.BuildInfo, version, commit, date string) Info {
	info := Info{Version: version, Commit: commit, Date: date,
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if info.Version == "" && bi.Main.Version != "" {
			info.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		var revision string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
		if info.Commit == "" {
			info.Commit = revision
		}
	}
	if info.Version == "" {
		info.Version = Devel
	}
	return info
}

// String is what `driftmon version` prints: the version on the first line, then one
// line per known detail.
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "driftmon %s\n", i.Version)
	if i.Commit != "" {
		modified := ""
		if i.Modified {
			modified = " (with uncommitted changes)"
		}
		fmt.Fprintf(&b, "  commit: %s%s\n", i.Commit, modified)
	}
	if i.Date != "" {
		fmt.Fprintf(&b, "  built:  %s\n", i.Date)
	}
	fmt.Fprintf(&b, "  go:     %s %s\n", i.GoVersion, i.Platform)
	return b.String()
}
