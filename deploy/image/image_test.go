package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// staticBinary builds the product's driftmon binary with CGO_ENABLED=0, once per test
// run, from the checkout this module sits in.
var staticBinary = sync.OnceValues(func() (string, error) {
	var err error
	if binDir, err = os.MkdirTemp("", "driftmon-image-test-"); err != nil {
		return "", err
	}
	dir := binDir
	bin := filepath.Join(dir, "driftmon")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/driftmon")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// binDir holds the binary staticBinary built, if it did; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func buildArchive(t *testing.T) (archive string, digest string) {
	t.Helper()
	bin, err := staticBinary()
	if err != nil {
		t.Fatal(err)
	}
	img, err := Build(Options{Binary: bin, Version: "v9.8.7", Revision: "0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	archive = filepath.Join(t.TempDir(), "driftmon-image.tar")
	if err := WriteOCIArchive(archive, img, "driftmon:test"); err != nil {
		t.Fatal(err)
	}
	return archive, h.String()
}

// ociDescriptor, ociIndex, ociManifest and ociConfig are the parts of the OCI image
// spec a runtime reads, decoded here without the library that wrote them.
type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
}

type ociIndex struct {
	SchemaVersion int             `json:"schemaVersion"`
	Manifests     []ociDescriptor `json:"manifests"`
}

type ociManifest struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Config        ociDescriptor   `json:"config"`
	Layers        []ociDescriptor `json:"layers"`
}

type ociConfig struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Config       struct {
		User       string            `json:"User"`
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		Env        []string          `json:"Env"`
		WorkingDir string            `json:"WorkingDir"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// unpack reads the OCI archive as a runtime would: index, manifest, config, each blob
// checked against its digest and size, and each layer's uncompressed bytes against
// its diff_id; the layers are extracted in order into a new root file system.
func unpack(t *testing.T, archive string) (rootfs string, ix ociIndex, cfg ociConfig) {
	t.Helper()
	blobs := map[string][]byte{}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("archive: %v", err)
		}
		if h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			blobs[h.Name] = data
		}
	}
	var lay struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(blobs["oci-layout"], &lay); err != nil || lay.Version != "1.0.0" {
		t.Fatalf("oci-layout %q: %v", blobs["oci-layout"], err)
	}
	blob := func(d ociDescriptor) []byte {
		t.Helper()
		algo, hexsum, _ := strings.Cut(d.Digest, ":")
		data, ok := blobs["blobs/"+algo+"/"+hexsum]
		if !ok || algo != "sha256" {
			t.Fatalf("no blob %s", d.Digest)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != hexsum || int64(len(data)) != d.Size {
			t.Fatalf("blob %s: sha256 %x, %d bytes; descriptor says %d", d.Digest, sum, len(data), d.Size)
		}
		return data
	}
	decode := func(data []byte, v any) {
		t.Helper()
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(v); err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
	}
	decode(blobs["index.json"], &ix)
	if ix.SchemaVersion != 2 || len(ix.Manifests) != 1 {
		t.Fatalf("index.json: %+v", ix)
	}
	var m ociManifest
	decode(blob(ix.Manifests[0]), &m)
	if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.Config.MediaType != "application/vnd.oci.image.config.v1+json" {
		t.Errorf("manifest %q, config %q: want the OCI media types", m.MediaType, m.Config.MediaType)
	}
	decode(blob(m.Config), &cfg)
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		t.Fatalf("%d diff_ids for %d layers", len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	rootfs = t.TempDir()
	if err := os.Chmod(rootfs, 0o755); err != nil { // the non-root user must traverse it
		t.Fatal(err)
	}
	for i, l := range m.Layers {
		if l.MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
			t.Errorf("layer %d: media type %q", i, l.MediaType)
		}
		zr, err := gzip.NewReader(bytes.NewReader(blob(l)))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(raw); "sha256:"+hex.EncodeToString(sum[:]) != cfg.RootFS.DiffIDs[i] {
			t.Fatalf("layer %d: uncompressed sha256 %x, diff_id %s", i, sum, cfg.RootFS.DiffIDs[i])
		}
		extract(t, rootfs, raw)
	}
	return rootfs, ix, cfg
}

// extract writes a layer's files, modes and owners under root.
func extract(t *testing.T, root string, layer []byte) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Clean(h.Name)
		if filepath.IsAbs(name) || strings.HasPrefix(name, "..") || strings.Contains(filepath.Base(name), ".wh.") {
			t.Fatalf("layer entry %q: outside the root, or a whiteout this image has no use for", h.Name)
		}
		path := filepath.Join(root, name)
		mode := os.FileMode(h.Mode).Perm()
		if h.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("layer entry %q: unexpected type %c", h.Name, h.Typeflag)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 {
			if err := os.Lchown(path, h.Uid, h.Gid); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestImageArchive: the archive is an OCI image layout whose image runs driftmon as
// the non-root user 65532 from /usr/local/bin/driftmon, with CA roots, and names
// itself for the tools that load it.
func TestImageArchive(t *testing.T) {
	archive, digest := buildArchive(t)
	rootfs, ix, cfg := unpack(t, archive)
	if got := ix.Manifests[0].Digest; got != digest {
		t.Errorf("index names manifest %s, the image's digest is %s", got, digest)
	}
	for _, key := range []string{"org.opencontainers.image.ref.name", "io.containerd.image.name"} {
		if got := ix.Manifests[0].Annotations[key]; got != "driftmon:test" {
			t.Errorf("annotation %s = %q, want driftmon:test", key, got)
		}
	}
	c := cfg.Config
	if cfg.OS != "linux" || cfg.Architecture == "" || c.User != "65532:65532" ||
		strings.Join(c.Entrypoint, " ") != BinaryPath || strings.Join(c.Cmd, " ") != "run -c "+ConfigPath ||
		c.WorkingDir != StateDir || c.Labels["org.opencontainers.image.version"] != "v9.8.7" ||
		c.Labels["org.opencontainers.image.revision"] != "0123456789abcdef" {
		t.Errorf("image config: %s/%s %+v", cfg.OS, cfg.Architecture, c)
	}

	passwd, err := os.ReadFile(filepath.Join(rootfs, "etc/passwd"))
	if err != nil || !strings.Contains(string(passwd), "\nnonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no user 65532 (%v):\n%s", err, passwd)
	}
	certs, err := os.ReadFile(filepath.Join(rootfs, CACertsPath))
	if err != nil {
		t.Fatal(err)
	}
	pool := 0
	for rest := certs; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			t.Fatalf("CA roots: %v", err)
		}
		pool++
	}
	if want, _ := os.ReadFile(DefaultCACerts); !bytes.Equal(certs, want) || pool == 0 {
		t.Errorf("CA roots: %d certificates, equal to the build machine's %v", pool, bytes.Equal(certs, want))
	}
	for path, want := range map[string]os.FileMode{
		BinaryPath: 0o755, StateDir: os.ModeDir | 0o700, "/tmp": os.ModeDir | os.ModeSticky | 0o777,
	} {
		if fi, err := os.Stat(filepath.Join(rootfs, path)); err != nil || fi.Mode() != want {
			t.Errorf("%s: %v, mode %v, want %v", path, err, fi.Mode(), want)
		}
	}

	if os.Geteuid() != 0 {
		t.Skip("running the image's binary as uid 65532 in a chroot of the unpacked image needs root; the archive itself was checked")
	}
	// As the Helm chart does: the config at ConfigPath, a secret through a *_file key,
	// another through ${NAME}.
	example, err := os.ReadFile(filepath.Join("..", "..", "config", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string][]byte{
		ConfigPath:                             example,
		"/etc/driftmon/retrain-webhook-secret": []byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
	} {
		if err := os.WriteFile(filepath.Join(rootfs, path), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runInImage := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(c.Entrypoint[0], args...)
		cmd.Dir = c.WorkingDir
		cmd.Env = append(append([]string{}, c.Env...), env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: rootfs, Credential: &syscall.Credential{Uid: UID, Gid: GID}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := runInImage(nil, "version")
	if err != nil || !strings.HasPrefix(out, "driftmon ") {
		t.Errorf("driftmon version in the image: %v\n%s", err, out)
	}
	out, err = runInImage([]string{"SLACK_BOT_TOKEN=xoxb-1-2-abc"}, "check", "-c", ConfigPath)
	if err != nil || !strings.Contains(out, ConfigPath+" is valid") {
		t.Errorf("driftmon check in the image: %v\n%s", err, out)
	}
	// The user really is 65532: the root-only secret is refused by name.
	secret := filepath.Join(rootfs, "/etc/driftmon/retrain-webhook-secret")
	if err := os.Chmod(secret, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runInImage([]string{"SLACK_BOT_TOKEN=xoxb-1-2-abc"}, "check", "-c", ConfigPath)
	if err == nil || !strings.Contains(out, "permission denied") {
		t.Errorf("driftmon check with a secret only root may read: %v\n%s", err, out)
	}
}

// TestImageIsReproducible: the same inputs give the same image digest, so a rebuild
// can be checked against a published image.
func TestImageIsReproducible(t *testing.T) {
	bin, err := staticBinary()
	if err != nil {
		t.Fatal(err)
	}
	var digests []string
	for range 2 {
		img, err := Build(Options{Binary: bin})
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d.String())
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of the same inputs: %v", digests)
	}
}

// TestBuildRefusesWhatCannotRun: a binary that would not start on an empty base, or
// missing CA roots, is an error that says so.
func TestBuildRefusesWhatCannotRun(t *testing.T) {
	bin, err := staticBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := filepath.Join(dir, "driftmon.sh")
	if err := os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	noCerts := filepath.Join(dir, "certs.pem")
	if err := os.WriteFile(noCerts, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		opts Options
		want string
	}{
		{Options{Binary: text}, "is not a Linux binary"},
		{Options{Binary: filepath.Join(dir, "missing")}, "cannot read the driftmon binary"},
		{Options{Binary: bin, CACerts: filepath.Join(dir, "missing.pem")}, "cannot read the CA roots"},
		{Options{Binary: bin, CACerts: noCerts}, "holds no PEM certificate"},
	}
	// A dynamically linked binary: the go command itself, when cgo built it, or /bin/sh.
	for _, p := range []string{"/bin/sh", "/bin/ls"} {
		if _, err := os.Stat(p); err == nil {
			cases = append(cases, struct {
				opts Options
				want string
			}{Options{Binary: p}, "is dynamically linked"})
			break
		}
	}
	for _, tc := range cases {
		_, err := Build(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one saying %q", tc.opts, err, tc.want)
		}
	}
}
