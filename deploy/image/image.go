// Package image builds driftmon's container image without Docker: an empty base, the
// static driftmon binary, the build machine's CA roots and a non-root user, as the
// Dockerfile at the repository's root builds it on distroless for those who have
// Docker. The image is written as an OCI archive (an OCI image layout in a tar file)
// that podman load, skopeo copy oci-archive: and docker load read, and that crane can
// push to a registry.
package image

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Where things are in the image. The Helm chart mounts the config at ConfigPath and the
// state volume at StateDir.
const (
	// BinaryPath is the driftmon binary, the image's entrypoint.
	BinaryPath = "/usr/local/bin/driftmon"
	// ConfigPath is the config file the default command runs with.
	ConfigPath = "/etc/driftmon/driftmon.yaml"
	// StateDir is the working directory, owned by the non-root user: a place for
	// state.path.
	StateDir = "/var/lib/driftmon"
	// CACertsPath is where the CA roots go, the first place Go's crypto/x509 looks on
	// Linux.
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"
	// UID and GID are the non-root user the image runs as ("nonroot", as in
	// distroless).
	UID, GID = 65532, 65532
	// HTTPPort is where `driftmon run` serves /metrics, /healthz, /readyz and the API.
	HTTPPort = 8080
)

// DefaultCACerts is the build machine's CA bundle (Debian, Ubuntu, Alpine).
const DefaultCACerts = "/etc/ssl/certs/ca-certificates.crt"

// Options are the image's inputs.
type Options struct {
	// Binary is a statically linked Linux driftmon binary (CGO_ENABLED=0).
	Binary string
	// CACerts is a PEM bundle of CA roots; default DefaultCACerts.
	CACerts string
	// Version and Revision become the org.opencontainers.image.version and .revision
	// labels when set.
	Version, Revision string
	// Created is the image's creation time and the files' modification time; the zero
	// value means the Unix epoch, so that the same inputs give the same image digest.
	Created time.Time
}

// Build assembles the image.
func Build(opts Options) (v1.Image, error) {
	if opts.CACerts == "" {
		opts.CACerts = DefaultCACerts
	}
	if opts.Created.IsZero() {
		opts.Created = time.Unix(0, 0)
	}
	opts.Created = opts.Created.UTC()
	bin, err := os.ReadFile(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("cannot read the driftmon binary: %w", err)
	}
	arch, err := staticLinuxArch(opts.Binary)
	if err != nil {
		return nil, err
	}
	certs, err := os.ReadFile(opts.CACerts)
	if err != nil {
		return nil, fmt.Errorf("cannot read the CA roots (install ca-certificates, or name a PEM bundle): %w", err)
	}
	if !bytes.Contains(certs, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("%s holds no PEM certificate", opts.CACerts)
	}

	files := []file{
		{path: "etc/", mode: 0o755},
		{path: "etc/driftmon/", mode: 0o755},
		{path: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{path: "etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		{path: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\n" +
			"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{path: "etc/ssl/", mode: 0o755},
		{path: "etc/ssl/certs/", mode: 0o755},
		{path: CACertsPath[1:], mode: 0o644, data: certs},
		{path: "home/", mode: 0o755},
		{path: "home/nonroot/", mode: 0o700, owned: true},
		{path: "tmp/", mode: 0o1777},
		{path: "usr/", mode: 0o755},
		{path: "usr/local/", mode: 0o755},
		{path: "usr/local/bin/", mode: 0o755},
		{path: BinaryPath[1:], mode: 0o755, data: bin},
		{path: "var/", mode: 0o755},
		{path: "var/lib/", mode: 0o755},
		{path: StateDir[1:] + "/", mode: 0o700, owned: true},
	}
	layerTar, err := tarFiles(files, opts.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("cannot make the layer: %w", err)
	}

	labels := map[string]string{
		"org.opencontainers.image.title":    "driftmon",
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
	if opts.Version != "" {
		labels["org.opencontainers.image.version"] = opts.Version
	}
	if opts.Revision != "" {
		labels["org.opencontainers.image.revision"] = opts.Revision
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.ConfigFile(base, &v1.ConfigFile{
		OS:           "linux",
		Architecture: arch,
		Created:      v1.Time{Time: opts.Created},
		Config: v1.Config{
			User:         strconv.Itoa(UID) + ":" + strconv.Itoa(GID),
			Entrypoint:   []string{BinaryPath},
			Cmd:          []string{"run", "-c", ConfigPath},
			WorkingDir:   StateDir,
			Env:          []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=" + CACertsPath},
			ExposedPorts: map[string]struct{}{strconv.Itoa(HTTPPort) + "/tcp": {}},
			Labels:       labels,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("cannot set the image config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: opts.Created}, CreatedBy: "driftmon-image (deploy/image)",
		Comment: "static driftmon binary, CA roots, non-root user 65532",
	}})
	if err != nil {
		return nil, fmt.Errorf("cannot add the layer: %w", err)
	}
	return img, nil
}

// imageArch is the image architecture (GOARCH's name) of each ELF machine.
var imageArch = map[elf.Machine]string{
	elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64", elf.EM_386: "386", elf.EM_ARM: "arm",
	elf.EM_PPC64: "ppc64le", elf.EM_S390: "s390x", elf.EM_RISCV: "riscv64",
}

// staticLinuxArch returns the image architecture of a statically linked Linux ELF
// binary, and an error saying what is wrong with any other file: a dynamically linked
// binary would not start on an empty base.
func staticLinuxArch(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s is not a Linux binary: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%s is dynamically linked; build it with CGO_ENABLED=0 so that it runs on an empty base", path)
		}
	}
	if arch, ok := imageArch[f.Machine]; ok {
		return arch, nil
	}
	return "", fmt.Errorf("%s is built for %v, which the image does not know", path, f.Machine)
}

// file is one entry of the layer: a directory when path ends in "/".
type file struct {
	path  string
	mode  int64
	data  []byte
	owned bool // by the non-root user, else by root
}

// tarFiles writes files into a tar in path order, every entry stamped with mtime, so
// that the same files give the same bytes.
func tarFiles(files []file, mtime time.Time) ([]byte, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.path, Mode: f.mode, ModTime: mtime, Format: tar.FormatPAX,
			Uname: "root", Gname: "root", Typeflag: tar.TypeReg, Size: int64(len(f.data))}
		if f.path[len(f.path)-1] == '/' {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if f.owned {
			h.Uid, h.Gid, h.Uname, h.Gname = UID, GID, "nonroot", "nonroot"
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("cannot write the layer: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("cannot write the layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("cannot write the layer: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteOCIArchive writes img to path as an OCI archive: an OCI image layout in a tar
// file, its one manifest named ref ("driftmon:v0.1.0") for the tools that load it.
func WriteOCIArchive(path string, img v1.Image, ref string) (err error) {
	dir, err := os.MkdirTemp("", "driftmon-image-")
	if err != nil {
		return fmt.Errorf("cannot write the image: %w", err)
	}
	defer os.RemoveAll(dir)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("cannot write the image layout: %w", err)
	}
	annotations := map[string]string{
		"org.opencontainers.image.ref.name": ref, // skopeo, podman
		"io.containerd.image.name":          ref, // docker load, ctr import
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(annotations)); err != nil {
		return fmt.Errorf("cannot write the image layout: %w", err)
	}
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot write the image: %w", err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("cannot write the image: %w", cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	return tarDir(out, dir)
}

// tarDir writes the regular files under dir into a tar in path order, with their
// directories, and fixed times and owners.
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		h := &tar.Header{Name: rel, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX, Typeflag: tar.TypeReg}
		if d.IsDir() {
			h.Name, h.Mode, h.Typeflag = rel+"/", 0o755, tar.TypeDir
			return tw.WriteHeader(h)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", rel)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("cannot write the image archive: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("cannot write the image archive: %w", err)
	}
	return nil
}
