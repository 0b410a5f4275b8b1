package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

const versionPkg = "github.com/driftmon/driftmon/internal/version"

// runBinary runs the driftmon binary at bin with args and returns its stdout.
func runBinary(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return string(out)
}

// TestVersionStampedAtLinkTime builds the real binary with the version, commit and
// date set through -ldflags -X, as make build does, and reads them back.
func TestVersionStampedAtLinkTime(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	bin := filepath.Join(t.TempDir(), "driftmon")
	ldflags := "-X " + versionPkg + ".version=v9.8.7 -X " + versionPkg + ".commit=0123456789abcdef0123456789abcdef01234567" +
		" -X " + versionPkg + ".date=2026-12-01T10:00:00Z"
	if out, err := exec.Command(goCmd, "build", "-ldflags", ldflags, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	want := "driftmon v9.8.7\n" +
		"  commit: 0123456789abcdef0123456789abcdef01234567\n" +
		"  built:  2026-12-01T10:00:00Z\n" +
		"  go:     " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if got := runBinary(t, bin, "version"); got != want {
		t.Errorf("driftmon version:\n%s\nwant\n%s", got, want)
	}
}

// TestMakeBuildStampsTheVersion: make build stamps git's description of the checkout,
// its commit and the time of the build.
func TestMakeBuildStampsTheVersion(t *testing.T) {
	for _, tool := range []string{"make", "git", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on PATH", tool)
		}
	}
	git := func(args ...string) string {
		out, err := exec.Command("git", args...).Output()
		if err != nil {
			t.Skipf("git %v: %v (not a git checkout?)", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	describe, head := git("describe", "--tags", "--always", "--dirty"), git("rev-parse", "HEAD")
	bin := filepath.Join(t.TempDir(), "driftmon")
	before := time.Now().UTC().Truncate(time.Second)
	if out, err := exec.Command("make", "-s", "-C", "../..", "build", "BIN="+bin).CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	got := runBinary(t, bin, "version")
	m := regexp.MustCompile(`^driftmon (\S+)\n  commit: (\S+)\n  built:  (\S+)\n  go:     (\S+) `).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("driftmon version after make build:\n%s", got)
	}
	if m[1] != describe || m[2] != head || m[4] != runtime.Version() {
		t.Errorf("version %q commit %q go %q, want %q %q %q", m[1], m[2], m[4], describe, head, runtime.Version())
	}
	built, err := time.Parse(time.RFC3339, m[3])
	if err != nil || built.Before(before) || built.After(time.Now().Add(time.Second)) {
		t.Errorf("build date %q (%v): want an RFC 3339 time during the build, after %v", m[3], err, before)
	}
}
