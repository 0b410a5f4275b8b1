package image

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDockerfileMatchesTheImage: the Dockerfile at the repository's root, which no
// test here can run without Docker, builds what Build builds: a CGO_ENABLED=0 binary
// at BinaryPath on distroless static, run as UID:GID from StateDir with the same
// entrypoint, command and port.
func TestDockerfileMatchesTheImage(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// Instructions by keyword, continuation lines joined; the last stage's win.
	last := map[string]string{}
	var runs []string
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kw, arg, _ := strings.Cut(line, " ")
		kw = strings.ToUpper(kw)
		if kw == "FROM" {
			last = map[string]string{}
		}
		last[kw] = strings.TrimSpace(arg)
		if kw == "RUN" {
			runs = append(runs, arg)
		}
	}
	execForm := func(kw string) string {
		var v []string
		if err := json.Unmarshal([]byte(last[kw]), &v); err != nil {
			t.Errorf("%s %s: not the exec form: %v", kw, last[kw], err)
		}
		return strings.Join(v, " ")
	}
	uid := strconv.Itoa(UID) + ":" + strconv.Itoa(GID)
	for _, c := range []struct{ what, got, want string }{
		{"final FROM", strings.SplitN(last["FROM"], ":", 2)[0], "gcr.io/distroless/static-debian12"},
		{"USER", last["USER"], uid},
		{"WORKDIR", last["WORKDIR"], StateDir},
		{"EXPOSE", last["EXPOSE"], strconv.Itoa(HTTPPort)},
		{"ENTRYPOINT", execForm("ENTRYPOINT"), BinaryPath},
		{"CMD", execForm("CMD"), "run -c " + ConfigPath},
	} {
		if c.got != c.want {
			t.Errorf("Dockerfile %s = %q, want %q as the image has it", c.what, c.got, c.want)
		}
	}
	if !strings.HasSuffix(last["FROM"], ":nonroot") {
		t.Errorf("final FROM %q: want distroless' nonroot variant", last["FROM"])
	}
	if len(runs) == 0 || !strings.Contains(strings.Join(runs, "\n"), "CGO_ENABLED=0 go build") {
		t.Errorf("the binary is not built with CGO_ENABLED=0: %q", runs)
	}
	if !strings.Contains(string(data), "COPY --from=build /out/driftmon "+BinaryPath+"\n") ||
		!strings.Contains(string(data), "--chown="+uid+" /out/state "+StateDir+"\n") {
		t.Errorf("the Dockerfile does not put the binary at %s and a state directory owned by %s at %s", BinaryPath, uid, StateDir)
	}
	// The Go version that builds it is the one go.mod asks for.
	gomod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var goVersion string
	for _, l := range strings.Split(string(gomod), "\n") {
		if v, ok := strings.CutPrefix(l, "go "); ok {
			goVersion = strings.TrimSpace(v)
		}
	}
	if !strings.Contains(string(data), "FROM golang:"+goVersion+" AS build") {
		t.Errorf("the build stage is not golang:%s, the version go.mod names", goVersion)
	}
}
