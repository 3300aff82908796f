// Command dist builds fieldgate's release artifacts (`make package`):
//
//	dist/fieldgate-gateway_VERSION_{amd64,arm64,armhf,armel}.deb
//	dist/fieldgate-central_VERSION_{amd64,arm64}.deb
//	dist/fieldgate-{gateway,central}_VERSION.oci/      an OCI image layout: one index for linux/amd64, linux/arm64,
//	                                                   linux/arm/v7 and linux/arm/v6
//	dist/fieldgate-{gateway,central}_VERSION.oci.tar   the same layout in one file (docker load, podman load)
//
// It runs in tools/ (its own go.mod, so nfpm's and go-containerregistry's dependencies stay out of the main
// module): go -C tools run ./dist -version V -commit C -epoch SOURCE_DATE_EPOCH. The same commit, version and
// epoch give byte-identical files: binaries are built with -trimpath and no VCS stamp, and every time stamp in
// a package or image is the epoch.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// release says what to build and where.
type release struct {
	root    string    // the repository
	out     string    // where the artifacts go
	version string    // Debian version and image tag, from scripts/version.sh
	commit  string    // the git commit, for `version` and the image labels
	epoch   time.Time // every time stamp (SOURCE_DATE_EPOCH)
	// only, when set, limits the work to these artifacts (tests): program names with "/" and a Debian
	// architecture ("gateway/amd64") for packages, or "gateway/oci" for an image.
	only map[string]bool

	work string // a temporary folder for the binaries and generated files, during build
}

func main() {
	var r release
	var epoch int64
	flag.StringVar(&r.root, "root", "..", "the repository's `folder`")
	flag.StringVar(&r.out, "out", "../dist", "output `folder`")
	flag.StringVar(&r.version, "version", "", "package and image `version` (scripts/version.sh)")
	flag.StringVar(&r.commit, "commit", "", "git `commit` the artifacts are built from")
	flag.Int64Var(&epoch, "epoch", envEpoch(), "time stamp of every file, in `seconds` since 1970 (default $SOURCE_DATE_EPOCH)")
	flag.Parse()
	if r.version == "" || r.commit == "" || epoch <= 0 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: dist -version V -commit C [-epoch S] [-root ..] [-out ../dist]  (set SOURCE_DATE_EPOCH or -epoch)")
		os.Exit(2)
	}
	r.epoch = time.Unix(epoch, 0).UTC()
	var err error
	if r.root, err = filepath.Abs(r.root); err == nil {
		r.out, err = filepath.Abs(r.out)
	}
	if err == nil {
		err = r.build(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dist:", err)
		os.Exit(1)
	}
}

func envEpoch() int64 {
	n, _ := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
	return n
}
