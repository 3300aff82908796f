package main

import (
	"archive/tar"
	"bytes"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// These tests build the release once (TestMain) and check it as an operator would meet it: packages installed
// into a scratch root with dpkg (never this machine's /etc), lintian, systemd-analyze, and every binary of every
// package and image run under qemu-user on the oldest CPU its platform names. They need dpkg, lintian,
// systemd-analyze and qemu-user-static (make test installs them); -short skips them.

const testEpoch = 1767225600 // 2026-01-01T00:00:00Z

// built is the release of version 1.0.0 that TestMain builds.
var built *release

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "fieldgate-dist-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	built = testRelease(filepath.Join(dir, "1.0.0"), "1.0.0", nil)
	if err := built.build(io.Discard); err != nil {
		fmt.Fprintln(os.Stderr, "building the release:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func testRelease(out, version string, only map[string]bool) *release {
	root, err := filepath.Abs("../..")
	if err != nil {
		panic(err)
	}
	return &release{root: root, out: out, version: version, commit: "abc1234", epoch: time.Unix(testEpoch, 0).UTC(), only: only}
}

func needBuilt(t *testing.T) {
	t.Helper()
	if built == nil {
		t.Skip("builds every package and image; skipped with -short")
	}
}

// The same commit, version and epoch give the same bytes: every package, both image layouts and tar files.
func TestReproducible(t *testing.T) {
	needBuilt(t)
	again := testRelease(t.TempDir(), built.version, nil)
	if err := again.build(io.Discard); err != nil {
		t.Fatal(err)
	}
	first, second := treeFiles(t, built.out), treeFiles(t, again.out)
	if len(first) == 0 || !slices.Equal(slices.Sorted(maps.Keys(first)), slices.Sorted(maps.Keys(second))) {
		t.Fatalf("the builds made different files:\n%v\n%v", slices.Sorted(maps.Keys(first)), slices.Sorted(maps.Keys(second)))
	}
	for name, b := range first {
		if !bytes.Equal(b, second[name]) {
			t.Errorf("%s differs between two builds of the same commit", name)
		}
	}
	for _, p := range programs {
		_, m := layoutIndex(t, built.imageLayout(p))
		t.Logf("%s image index %s (both builds)", p.pkg(), m.Manifests[0].Digest)
	}
}

// lintian reports no errors on any package (warnings are printed).
func TestLintian(t *testing.T) {
	needBuilt(t)
	debs, _ := filepath.Glob(filepath.Join(built.out, "*.deb"))
	if len(debs) != 6 {
		t.Fatalf("want 6 packages, found %v", debs)
	}
	out, err := exec.Command("lintian", append([]string{"--tag-display-limit", "0"}, debs...)...).CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("lintian: %v (apt-get install lintian, or run make test)", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case strings.HasPrefix(line, "E: "):
			t.Error("lintian:", line)
		case line != "" && !strings.Contains(line, "root privileges"):
			t.Log("lintian:", line)
		}
	}
	if err != nil && !t.Failed() {
		t.Errorf("lintian failed without an error tag: %v\n%s", err, out)
	}
}

// Every package holds a binary for its architecture, stamped with the version (the gateway's at most 20 MB),
// that runs on the oldest CPU of that architecture, and no dpkg conffile (postinst creates the configuration: see
// TestInstallUpgradeRemovePurge).
func TestPackagesRunOnTheirCPU(t *testing.T) {
	needBuilt(t)
	for _, p := range programs {
		for _, arch := range p.debs {
			t.Run(p.name+"/"+arch, func(t *testing.T) {
				deb := filepath.Join(built.out, fmt.Sprintf("%s_%s_%s.deb", p.pkg(), built.version, arch))
				for field, want := range map[string]string{"Package": p.pkg(), "Version": built.version, "Architecture": arch} {
					if got := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, field)); got != want {
						t.Errorf("%s: %s %q, want %q", filepath.Base(deb), field, got, want)
					}
				}
				if out, err := exec.Command("dpkg-deb", "--info", deb, "conffiles").CombinedOutput(); err == nil {
					t.Errorf("%s has conffiles (an upgrade could prompt or replace them):\n%s", filepath.Base(deb), out)
				}
				dir := t.TempDir()
				run(t, "dpkg-deb", "-x", deb, dir)
				tg := debTargets[arch]
				bin := filepath.Join(dir, "usr/bin", p.pkg())
				if fi, err := os.Stat(bin); err != nil {
					t.Fatal(err)
				} else if p.name == "gateway" && fi.Size() > 20e6 {
					t.Errorf("%s is %d bytes; want at most 20 MB for a Pi", bin, fi.Size())
				}
				out := runTarget(t, tg, bin, "version")
				if !strings.Contains(out, " "+built.version+" ") || !strings.Contains(out, "linux/"+tg.goarch) {
					t.Errorf("%s version on %s: %q", p.pkg(), tg, out)
				}
			})
		}
	}
}

// Raspberry Pi OS calls every Pi's 32-bit architecture armhf, the Pi Zero's and Pi 1's ARMv6 included: the
// armhf package's ARMv7 binary dies there with SIGILL, so its preinst refuses such a CPU and names the armel
// package, whose binary runs there.
func TestArmhfRefusedOnARMv6(t *testing.T) {
	needBuilt(t)
	dir := t.TempDir()
	run(t, "dpkg-deb", "-x", filepath.Join(built.out, "fieldgate-gateway_"+built.version+"_armhf.deb"), filepath.Join(dir, "armhf"))
	run(t, "dpkg-deb", "-x", filepath.Join(built.out, "fieldgate-gateway_"+built.version+"_armel.deb"), filepath.Join(dir, "armel"))
	armv6 := target{"arm", "6"}
	if out, err := exec.Command(emulator(armv6)[0], append(emulator(armv6)[1:], filepath.Join(dir, "armhf/usr/bin/fieldgate-gateway"), "version")...).CombinedOutput(); err == nil {
		t.Errorf("the ARMv7 binary ran on an ARMv6 CPU (%q): the preinst check would be needless", out)
	}
	runTarget(t, armv6, filepath.Join(dir, "armel/usr/bin/fieldgate-gateway"), "version")

	fakeBin := filepath.Join(dir, "bin")
	preinst := filepath.Join(built.root, "deploy/debian/preinst")
	for _, tc := range []struct {
		arch, machine, dpkgRoot string
		refused                 bool
	}{
		{"armhf", "armv6l", "", true},
		{"armhf", "armv7l", "", false},
		{"armhf", "aarch64", "", false}, // a 32-bit OS on a 64-bit kernel (Pi 3, 4, 5)
		{"armel", "armv6l", "", false},
		{"armhf", "armv6l", dir, false}, // installing into another root
	} {
		os.RemoveAll(fakeBin)
		writeFile(t, filepath.Join(fakeBin, "uname"), 0o755, "#!/bin/sh\necho "+tc.machine+"\n")
		cmd := exec.Command("sh", preinst, "install")
		cmd.Env = append(os.Environ(), "PATH="+fakeBin+":"+os.Getenv("PATH"), "DPKG_MAINTSCRIPT_PACKAGE=fieldgate-gateway",
			"DPKG_MAINTSCRIPT_ARCH="+tc.arch, "DPKG_ROOT="+tc.dpkgRoot)
		out, err := cmd.CombinedOutput()
		if refused := err != nil; refused != tc.refused || (refused && !strings.Contains(string(out), "armel")) {
			t.Errorf("preinst of the %s package on %s (DPKG_ROOT %q): error %v, output %q; want refused=%v naming armel",
				tc.arch, tc.machine, tc.dpkgRoot, err, out, tc.refused)
		}
	}
}

// The operator's life with the packages, in a scratch root: install, edit the config and the secrets, let the
// gateway fill its buffer, upgrade (all of it survives, the unit stays enabled, a disabled unit stays disabled),
// remove (the data stays, a reinstall finds it), purge (everything goes). The central package shares /etc/fieldgate.
func TestInstallUpgradeRemovePurge(t *testing.T) {
	needBuilt(t)
	next := testRelease(t.TempDir(), "1.0.1", map[string]bool{"gateway/amd64": true, "central/amd64": true})
	if err := next.build(io.Discard); err != nil {
		t.Fatal(err)
	}
	deb := func(r *release, prog string) string {
		return filepath.Join(r.out, fmt.Sprintf("fieldgate-%s_%s_amd64.deb", prog, r.version))
	}
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "var/lib/dpkg/status"), 0o644, "")
	dpkg := func(args ...string) string {
		t.Helper()
		return run(t, "dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--log=/dev/null"}, args...)...)
	}
	at := func(p string) string { return filepath.Join(root, p) }
	gateway := func(args ...string) string {
		t.Helper()
		return run(t, at("/usr/bin/fieldgate-gateway"), args...)
	}
	const enabled = "/etc/systemd/system/multi-user.target.wants/fieldgate-gateway.service"

	// First install: the template becomes the config, an empty secrets file 0600, the unit enabled.
	dpkg("-i", deb(built, "gateway"), deb(built, "central"))
	checkFile(t, at("/usr/bin/fieldgate-gateway"), 0o755, "")
	checkFile(t, at("/lib/systemd/system/fieldgate-gateway.service"), 0o644, readFile(t, filepath.Join(built.root, "deploy/fieldgate-gateway.service")))
	template := readFile(t, filepath.Join(built.root, "deploy/gateway.yaml"))
	checkFile(t, at("/etc/fieldgate/gateway.yaml"), 0o644, template)
	checkFile(t, at("/etc/fieldgate/gateway.env"), 0o600, "")
	checkFile(t, at("/etc/fieldgate/central.env"), 0o600, "")
	if target, err := os.Readlink(at(enabled)); err != nil || target != "/lib/systemd/system/fieldgate-gateway.service" {
		t.Errorf("not enabled on first install: %s -> %q, %v", enabled, target, err)
	}
	if out := gateway("validate", "-config", at("/etc/fieldgate/gateway.yaml")); !strings.Contains(out, "configuration ok") {
		t.Errorf("the installed config does not validate:\n%s", out)
	}
	if out := run(t, at("/usr/bin/fieldgate-central"), "validate", "-config", at("/etc/fieldgate/central.yaml")); !strings.Contains(out, "valid") {
		t.Errorf("the installed central config does not validate:\n%s", out)
	}

	// The operator's edits, and a buffer where systemd's StateDirectory= (with DynamicUser=) keeps it.
	edited := strings.Replace(template, "gateway_id: gateway-1", "gateway_id: press-line-7", 1) + "# edited by the operator\n"
	writeFile(t, at("/etc/fieldgate/gateway.yaml"), 0o644, edited)
	writeFile(t, at("/etc/fieldgate/gateway.env"), 0o600, "KAFKA_PASSWORD=s3cret\n")
	if err := os.MkdirAll(at("/var/lib/private/fieldgate"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("private/fieldgate", at("/var/lib/fieldgate")); err != nil {
		t.Fatal(err)
	}
	buffer := strings.Repeat("a committed reading\n", 10000)
	writeFile(t, at("/var/lib/fieldgate/buffer.db"), 0o600, buffer)
	survived := func(when string) {
		t.Helper()
		checkFile(t, at("/etc/fieldgate/gateway.yaml"), 0o644, edited)
		checkFile(t, at("/etc/fieldgate/gateway.env"), 0o600, "KAFKA_PASSWORD=s3cret\n")
		checkFile(t, at("/var/lib/fieldgate/buffer.db"), 0o600, buffer)
		if t.Failed() {
			t.Fatalf("the operator's files did not survive %s", when)
		}
	}

	// Upgrade: the new binary, the operator's files untouched, still enabled.
	dpkg("-i", deb(next, "gateway"))
	survived("the upgrade")
	if out := gateway("version"); !strings.Contains(out, " 1.0.1 ") {
		t.Errorf("after the upgrade: %s", out)
	}
	if _, err := os.Lstat(at(enabled)); err != nil {
		t.Errorf("the upgrade disabled the unit: %v", err)
	}

	// The operator disables the service; an upgrade (here a reinstall) leaves it disabled.
	run(t, "systemctl", "--root="+root, "--quiet", "disable", "fieldgate-gateway.service")
	dpkg("-i", deb(next, "gateway"))
	if _, err := os.Lstat(at(enabled)); err == nil {
		t.Error("an upgrade enabled the unit the operator had disabled")
	}
	run(t, "systemctl", "--root="+root, "--quiet", "enable", "fieldgate-gateway.service")

	// Remove: program and unit gone, data kept; a reinstall carries on with it.
	dpkg("-r", "fieldgate-gateway")
	for _, p := range []string{"/usr/bin/fieldgate-gateway", "/lib/systemd/system/fieldgate-gateway.service"} {
		if _, err := os.Lstat(at(p)); err == nil {
			t.Errorf("%s is still there after dpkg -r", p)
		}
	}
	survived("dpkg -r")
	if status := dpkg("-s", "fieldgate-gateway"); !strings.Contains(status, "Status: deinstall ok config-files") {
		t.Errorf("after dpkg -r:\n%s", status)
	}
	dpkg("-i", deb(next, "gateway"))
	survived("a reinstall after dpkg -r")

	// Purge of the central package leaves the gateway's files; purge of the gateway deletes them all.
	dpkg("--purge", "fieldgate-central")
	survived("purging the other package")
	if _, err := os.Stat(at("/etc/fieldgate/central.yaml")); err == nil {
		t.Error("/etc/fieldgate/central.yaml survived dpkg --purge fieldgate-central")
	}
	dpkg("--purge", "fieldgate-gateway")
	for _, p := range []string{"/etc/fieldgate", "/var/lib/fieldgate", "/var/lib/private/fieldgate", enabled} {
		if _, err := os.Lstat(at(p)); err == nil {
			t.Errorf("%s is still there after dpkg --purge", p)
		}
	}
	if out, err := exec.Command("dpkg", "--root="+root, "-s", "fieldgate-gateway").CombinedOutput(); err == nil {
		t.Errorf("dpkg still knows the package after --purge:\n%s", out)
	}
}

// systemd-analyze accepts both units, and their sandboxes score "OK" or better in systemd-analyze security.
func TestSystemdUnits(t *testing.T) {
	needBuilt(t)
	level := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\S+)`)
	for _, p := range programs {
		t.Run(p.name, func(t *testing.T) {
			dir := t.TempDir()
			run(t, "dpkg-deb", "-x", filepath.Join(built.out, fmt.Sprintf("%s_%s_amd64.deb", p.pkg(), built.version)), dir)
			unit := filepath.Join(dir, "lib/systemd/system", p.pkg()+".service")
			// verify checks that the binaries exist on this machine, so it reads a copy that names the extracted ones.
			text := strings.ReplaceAll(readFile(t, unit), "/usr/bin/"+p.pkg(), filepath.Join(dir, "usr/bin", p.pkg()))
			check := filepath.Join(t.TempDir(), p.pkg()+".service")
			writeFile(t, check, 0o644, text)
			if out := run(t, "systemd-analyze", "verify", check); strings.TrimSpace(out) != "" {
				t.Errorf("systemd-analyze verify %s:\n%s", p.pkg()+".service", out)
			}
			out := run(t, "systemd-analyze", "security", "--offline=yes", unit)
			m := level.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no exposure level in:\n%s", out)
			}
			t.Logf("systemd-analyze security %s.service: exposure %s %s", p.pkg(), m[1], m[2])
			if !slices.Contains([]string{"PERFECT", "SAFE", "OK"}, m[2]) {
				t.Errorf("%s.service scores %s %s; want OK or better", p.pkg(), m[1], m[2])
			}
		})
	}
}

// Each image index holds the four platforms; each image runs as a non-root user, declares the state folder a
// volume, carries the labels, has a CA bundle, and its binary runs `version` on its platform's oldest CPU. The
// tar file holds exactly the layout.
func TestImages(t *testing.T) {
	needBuilt(t)
	for _, p := range programs {
		t.Run(p.name, func(t *testing.T) {
			dir := built.imageLayout(p)
			top, tm := layoutIndex(t, dir)
			if len(tm.Manifests) != 1 || tm.Manifests[0].Annotations["io.containerd.image.name"] != built.imageName(p) ||
				tm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != built.imageName(p) {
				t.Fatalf("index.json: %+v", tm.Manifests)
			}
			idx, err := top.ImageIndex(tm.Manifests[0].Digest)
			if err != nil {
				t.Fatal(err)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if im.MediaType != types.OCIImageIndex || len(im.Manifests) != len(imagePlatforms) {
				t.Fatalf("image index %s with %d manifests", im.MediaType, len(im.Manifests))
			}
			for i, desc := range im.Manifests {
				ip := imagePlatforms[i]
				if desc.Platform == nil || !desc.Platform.Equals(ip.platform) {
					t.Errorf("manifest %d: platform %+v, want %+v", i, desc.Platform, ip.platform)
					continue
				}
				img, err := idx.Image(desc.Digest)
				if err != nil {
					t.Fatal(err)
				}
				checkImage(t, p, ip.platform, ip.target, img)
			}
			checkTarHoldsFolder(t, dir+".tar", dir)
		})
	}
}

func checkImage(t *testing.T, p program, platform v1.Platform, tg target, img v1.Image) {
	t.Helper()
	name := platform.String()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if cf.OS != platform.OS || cf.Architecture != platform.Architecture || cf.Variant != platform.Variant {
		t.Errorf("%s: config says %s/%s/%s", name, cf.OS, cf.Architecture, cf.Variant)
	}
	if c.User != imageUser || strings.HasPrefix(c.User, "0") || c.User == "root" {
		t.Errorf("%s: runs as user %q, want the non-root %s", name, c.User, imageUser)
	}
	if !slices.Equal(c.Entrypoint, []string{"/usr/bin/" + p.pkg()}) {
		t.Errorf("%s: entrypoint %q", name, c.Entrypoint)
	}
	for label, want := range map[string]string{
		"org.opencontainers.image.version":  built.version,
		"org.opencontainers.image.revision": built.commit,
		"org.opencontainers.image.source":   "https://github.com/fieldgate/fieldgate",
	} {
		if c.Labels[label] != want {
			t.Errorf("%s: label %s = %q, want %q", name, label, c.Labels[label], want)
		}
	}
	if _, ok := c.Volumes[p.stateDir]; p.stateDir != "" && !ok {
		t.Errorf("%s: volumes %v, want %s", name, c.Volumes, p.stateDir)
	}
	if !cf.Created.Time.Equal(built.epoch) {
		t.Errorf("%s: created %s, want the epoch %s", name, cf.Created.Time, built.epoch)
	}

	// Unpack the layers as a container runtime would (they add files; no whiteouts) and look at the result.
	root := t.TempDir()
	headers := map[string]*tar.Header{}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		if mt, _ := l.MediaType(); mt != types.OCILayer {
			t.Errorf("%s: layer media type %s", name, mt)
		}
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		eachTarEntry(t, rc, func(h *tar.Header, body []byte) {
			headers[strings.TrimSuffix(h.Name, "/")] = h
			path := filepath.Join(root, h.Name)
			if h.Typeflag == tar.TypeDir {
				if err := os.MkdirAll(path, 0o755); err != nil {
					t.Fatal(err)
				}
				return
			}
			writeFile(t, path, fs.FileMode(h.Mode).Perm(), string(body))
		})
		rc.Close()
	}
	if p.stateDir != "" {
		if h := headers[p.stateDir[1:]]; h == nil || h.Uid != imageUID || h.Mode != 0o700 {
			t.Errorf("%s: state folder %s: %+v, want owned by %d, mode 0700", name, p.stateDir, h, imageUID)
		}
	}
	if h := headers["tmp"]; h == nil || h.Mode != 0o1777 {
		t.Errorf("%s: /tmp: %+v", name, h)
	}
	if !strings.Contains(readFile(t, filepath.Join(root, "etc/passwd")), "nonroot:x:65532:65532:") {
		t.Errorf("%s: /etc/passwd has no nonroot user", name)
	}
	if n := countCerts(t, filepath.Join(root, "etc/ssl/certs/ca-certificates.crt")); n < 100 {
		t.Errorf("%s: the CA bundle holds %d certificates", name, n)
	}
	bin := filepath.Join(root, "usr/bin", p.pkg())
	if out := runTarget(t, tg, bin, "version"); !strings.Contains(out, " "+built.version+" ") || !strings.Contains(out, "linux/"+tg.goarch) {
		t.Errorf("%s: version: %q", name, out)
	}
	if tg == (target{"amd64", ""}) {
		if out := run(t, bin, "validate", "-config", filepath.Join(root, "etc/fieldgate", p.name+".yaml")); !strings.Contains(out, "valid") &&
			!strings.Contains(out, "configuration ok") {
			t.Errorf("%s: the image's config does not validate:\n%s", name, out)
		}
	}
}

// checkTarHoldsFolder: the tar file has the same files with the same bytes as the folder.
func checkTarHoldsFolder(t *testing.T, tarPath, dir string) {
	t.Helper()
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := treeFiles(t, dir)
	n := 0
	eachTarEntry(t, f, func(h *tar.Header, body []byte) {
		if h.Typeflag != tar.TypeReg {
			return
		}
		if !bytes.Equal(body, want[h.Name]) {
			t.Errorf("%s: %s differs from the layout folder", filepath.Base(tarPath), h.Name)
		}
		n++
	})
	if n != len(want) {
		t.Errorf("%s holds %d files, the folder %d", filepath.Base(tarPath), n, len(want))
	}
}

// eachTarEntry calls fn with each entry of the tar stream r and its contents.
func eachTarEntry(t *testing.T, r io.Reader, fn func(h *tar.Header, body []byte)) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		fn(h, body)
	}
}

// emulator is how this machine runs a binary for tg: natively for amd64, else qemu-user with the oldest CPU of
// tg's architecture and GOARM level (Cortex-A7 for ARMv7, ARM1176 of the Pi Zero/1 for ARMv6, ARM926 for ARMv5).
func emulator(tg target) []string {
	switch tg.String() {
	case "arm64":
		return []string{"qemu-aarch64-static"}
	case "armv7":
		return []string{"qemu-arm-static", "-cpu", "cortex-a7"}
	case "armv6":
		return []string{"qemu-arm-static", "-cpu", "arm1176"}
	case "armv5":
		return []string{"qemu-arm-static", "-cpu", "arm926"}
	}
	return nil
}

// runTarget runs bin (built for tg) with args through emulator(tg) and returns its output.
func runTarget(t *testing.T, tg target, bin string, args ...string) string {
	t.Helper()
	if e := emulator(tg); e != nil {
		return run(t, e[0], append(append(e[1:], bin), args...)...)
	}
	return run(t, bin, args...)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func countCerts(t *testing.T, path string) int {
	t.Helper()
	rest, n := []byte(readFile(t, path)), 0
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return n
		}
		n++
	}
}

// layoutIndex reads the OCI layout in dir: its index.json, as an index and as a manifest.
func layoutIndex(t *testing.T, dir string) (v1.ImageIndex, *v1.IndexManifest) {
	t.Helper()
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := top.IndexManifest()
	if err != nil || len(m.Manifests) == 0 {
		t.Fatalf("index.json of %s: %v %v", dir, m, err)
	}
	return top, m
}

// treeFiles reads every regular file below dir, by slash-separated relative path.
func treeFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// checkFile fails the test unless path is a regular file with mode perm and, when want is not empty, content want.
func checkFile(t *testing.T, path string, perm fs.FileMode, want string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	if fi.Mode().Perm() != perm || !fi.Mode().IsRegular() {
		t.Errorf("%s: mode %s, want %s", path, fi.Mode(), perm)
	}
	if want != "" && readFile(t, path) != want {
		t.Errorf("%s: content changed:\n%s", path, readFile(t, path))
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path string, perm fs.FileMode, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // past the umask
		t.Fatal(err)
	}
}
