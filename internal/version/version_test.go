package version

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestReadPrefersWhatTheLinkerStamped(t *testing.T) {
	recorded := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/driftmon/driftmon", Version: "v0.0.0-20261201100000-0123456789ab"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		name                  string
		bi                    *debug.BuildInfo
		version, commit, date string
		want                  Info
	}{
		{"stamped", recorded, "v0.1.0", "fedcba9876543210", "2026-12-01T10:00:00Z",
			Info{Version: "v0.1.0", Commit: "fedcba9876543210", Modified: true, Date: "2026-12-01T10:00:00Z", GoVersion: "go1.26.8", Platform: platform}},
		{"recorded only", recorded, "", "", "",
			Info{Version: "v0.0.0-20261201100000-0123456789ab", Commit: "0123456789abcdef", Modified: true, GoVersion: "go1.26.8", Platform: platform}},
		{"go build of a checkout without vcs", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "", "", "",
			Info{Version: Devel, GoVersion: "go1.26.8", Platform: platform}},
		{"no build info", nil, "", "", "",
			Info{Version: Devel, GoVersion: runtime.Version(), Platform: platform}},
	} {
		if got := read(tc.bi, tc.version, tc.commit, tc.date); got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

func TestString(t *testing.T) {
	got := Info{Version: "v0.1.0", Commit: "abc", Modified: true, Date: "2026-12-01T10:00:00Z", GoVersion: "go1.26.8", Platform: "linux/amd64"}.String()
	want := "driftmon v0.1.0\n  commit: abc (with uncommitted changes)\n  built:  2026-12-01T10:00:00Z\n  go:     go1.26.8 linux/amd64\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got, want := (Info{Version: Devel, GoVersion: "go1.26.8", Platform: "linux/amd64"}).String(), "driftmon (devel)\n  go:     go1.26.8 linux/amd64\n"; got != want {
		t.Errorf("unstamped: got\n%s\nwant\n%s", got, want)
	}
}
