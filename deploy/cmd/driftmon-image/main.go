// Command driftmon-image builds driftmon's container image as an OCI archive without
// Docker (see package image); `make image` runs it on a binary built with
// CGO_ENABLED=0.
//
//	driftmon-image -binary driftmon -o driftmon-image.tar [-tag driftmon:v0.1.0]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/driftmon/driftmon/deploy/image"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("driftmon-image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	binary := fs.String("binary", "", "statically linked Linux driftmon binary (required)")
	out := fs.String("o", "driftmon-image.tar", "OCI archive to write")
	tag := fs.String("tag", "driftmon:dev", "name the archive gives the image")
	certs := fs.String("ca-certs", image.DefaultCACerts, "PEM bundle of CA roots to put in the image")
	version := fs.String("version", "", "org.opencontainers.image.version label")
	revision := fs.String("revision", "", "org.opencontainers.image.revision label")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *binary == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: driftmon-image -binary PATH [-o driftmon-image.tar] [-tag driftmon:dev]")
		return 2
	}
	opts := image.Options{Binary: *binary, CACerts: *certs, Version: *version, Revision: *revision}
	// SOURCE_DATE_EPOCH, the reproducible-builds convention, dates the image; unset, it
	// is the Unix epoch.
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fmt.Fprintf(stderr, "driftmon-image: SOURCE_DATE_EPOCH %q is not a number of seconds\n", s)
			return 2
		}
		opts.Created = time.Unix(sec, 0)
	}
	img, err := image.Build(opts)
	if err == nil {
		err = image.WriteOCIArchive(*out, img, *tag)
	}
	if err != nil {
		fmt.Fprintf(stderr, "driftmon-image: %v\n", err)
		return 1
	}
	digest, err := img.Digest()
	if err != nil {
		fmt.Fprintf(stderr, "driftmon-image: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s: %s %s\n", *out, *tag, digest)
	return 0
}
