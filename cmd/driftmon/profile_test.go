package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestProfileShowErrors(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "bad.profile")
	writeFile(t, corrupt, "car_value\n1\n")
	if got := runFails(t, 1, "profile", "show", corrupt); !strings.Contains(got, "bad.profile is not a valid driftmon profile") {
		t.Errorf("corrupt: %s", got)
	}
	if got := runFails(t, 1, "profile", "show", filepath.Join(dir, "nope.profile")); !strings.Contains(got, "no such file") {
		t.Errorf("missing: %s", got)
	}
	for _, args := range [][]string{{"profile"}, {"profile", "show"}, {"profile", "list"}} {
		if got := runFails(t, 2, args...); !strings.Contains(got, "Usage: driftmon profile show") {
			t.Errorf("%v: %s", args, got)
		}
	}
}
