package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// target is one linux build of a program: GOARCH and, for 32-bit ARM, GOARM.
type target struct{ goarch, goarm string }

func (t target) String() string {
	if t.goarm != "" {
		return t.goarch + "v" + t.goarm
	}
	return t.goarch
}

// debTargets maps the Debian architectures we package to their builds. armhf is ARMv7 with hardware floating
// point (Raspberry Pi 2 and later on a 32-bit OS, most ARM industrial PCs); armel is Debian's ARMv5 baseline,
// built with GOARM=5 (software floating point), which also runs on the ARMv6 Pi Zero and Pi 1, where an ARMv7
// binary stops at once with "this CPU has no VFPv3 floating point hardware".
var debTargets = map[string]target{
	"amd64": {"amd64", ""},
	"arm64": {"arm64", ""},
	"armhf": {"arm", "7"},
	"armel": {"arm", "5"},
}

// imagePlatforms are the entries of every image index, in order. An ARMv6 device pulls arm/v6; given only v7 it
// would take that and crash (moby/moby#41017).
var imagePlatforms = []struct {
	platform v1.Platform
	target   target
}{
	{v1.Platform{OS: "linux", Architecture: "amd64"}, target{"amd64", ""}},
	{v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, target{"arm64", ""}},
	{v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, target{"arm", "7"}},
	{v1.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, target{"arm", "6"}},
}

// program is one of fieldgate's two services, as packaged.
type program struct {
	name        string   // cmd/NAME; the package and binary are fieldgate-NAME
	description string   // the image's description label
	debs        []string // Debian architectures with a package
	port        string   // the HTTP port the image exposes
	stateDir    string   // the image's volume, or "" for a stateless program
}

var programs = []program{
	{
		name:        "gateway",
		description: "fieldgate edge gateway: Modbus, OPC UA and MQTT to a durable buffer to Kafka",
		debs:        []string{"amd64", "arm64", "armhf", "armel"},
		port:        "9100",
		stateDir:    "/var/lib/fieldgate",
	},
	{
		name:        "central",
		description: "fieldgate central service: Kafka to CrateDB with event-time windows",
		debs:        []string{"amd64", "arm64"},
		port:        "9101",
	},
}

func (p program) pkg() string { return "fieldgate-" + p.name }

// build makes every artifact (or those in r.only) in r.out, printing one line per file to w.
func (r *release) build(w io.Writer) error {
	if err := os.MkdirAll(r.out, 0o755); err != nil {
		return err
	}
	var err error
	if r.work, err = os.MkdirTemp("", "fieldgate-dist-"); err != nil {
		return err
	}
	defer os.RemoveAll(r.work)
	bins := map[string]string{} // program/target -> binary, each built once
	binary := func(p program, t target) (string, error) {
		key := p.name + "/" + t.String()
		if bins[key] == "" {
			path := filepath.Join(r.work, t.String(), p.pkg())
			if err := r.goBuild(p, t, path); err != nil {
				return "", err
			}
			bins[key] = path
		}
		return bins[key], nil
	}
	for _, p := range programs {
		for _, arch := range p.debs {
			if !r.wants(p.name + "/" + arch) {
				continue
			}
			bin, err := binary(p, debTargets[arch])
			if err != nil {
				return err
			}
			path, err := r.deb(p, arch, bin)
			if err != nil {
				return fmt.Errorf("%s %s package: %w", p.pkg(), arch, err)
			}
			fmt.Fprintln(w, path)
		}
		if !r.wants(p.name + "/oci") {
			continue
		}
		platformBins := make([]string, len(imagePlatforms))
		for i, ip := range imagePlatforms {
			if platformBins[i], err = binary(p, ip.target); err != nil {
				return err
			}
		}
		digest, err := r.image(p, platformBins)
		if err != nil {
			return fmt.Errorf("%s image: %w", p.pkg(), err)
		}
		fmt.Fprintf(w, "%s %s\n", r.imageLayout(p), digest)
		fmt.Fprintln(w, r.imageLayout(p)+".tar")
	}
	return nil
}

func (r *release) wants(artifact string) bool { return r.only == nil || r.only[artifact] }

// goBuild builds cmd/NAME for t as a static, stripped binary stamped with the version and commit.
func (r *release) goBuild(p program, t target, out string) error {
	ldflags := fmt.Sprintf("-s -w -X main.version=%s -X main.commit=%s", r.version, r.commit)
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out, "./cmd/"+p.name)
	cmd.Dir = r.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+t.goarch, "GOARM="+t.goarm)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("GOARCH=%s GOARM=%s go build ./cmd/%s: %v\n%s", t.goarch, t.goarm, p.name, err, strings.TrimSpace(string(b)))
	}
	return nil
}
