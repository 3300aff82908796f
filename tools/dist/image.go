package main

import (
	"archive/tar"
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// The images run as this user and group (distroless's "nonroot"), never as root.
const (
	imageUID  = 65532
	imageUser = "65532:65532"
)

// imageName is the reference docker and podman give a loaded image.
func (r *release) imageName(p program) string {
	return "docker.io/fieldgate/" + p.name + ":" + r.version
}

// imageLayout is the OCI layout folder of p's image; the tar file is the same path plus ".tar".
func (r *release) imageLayout(p program) string {
	return filepath.Join(r.out, p.pkg()+"_"+r.version+".oci")
}

// image builds p's image index from bins (one binary per entry of imagePlatforms), writes it as an OCI layout
// and a tar file of that layout, and returns the index's digest.
//
// Each image has two layers: a base shared by every platform and both programs (CA certificates, /etc/passwd
// with the nonroot user, /tmp), and the program (its binary, its default configuration, its state folder).
func (r *release) image(p program, bins []string) (v1.Hash, error) {
	base, err := r.layer(baseFiles())
	if err != nil {
		return v1.Hash{}, err
	}
	labels := map[string]string{
		"org.opencontainers.image.title":       p.pkg(),
		"org.opencontainers.image.description": p.description,
		"org.opencontainers.image.version":     r.version,
		"org.opencontainers.image.revision":    r.commit,
		"org.opencontainers.image.source":      "https://github.com/fieldgate/fieldgate",
		"org.opencontainers.image.url":         "https://github.com/fieldgate/fieldgate",
		"org.opencontainers.image.created":     r.epoch.Format("2006-01-02T15:04:05Z"),
	}
	created := v1.Time{Time: r.epoch}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, ip := range imagePlatforms {
		appFiles, err := r.programFiles(p, bins[i])
		if err != nil {
			return v1.Hash{}, err
		}
		app, err := r.layer(appFiles)
		if err != nil {
			return v1.Hash{}, err
		}
		img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		img, err = mutate.Append(img,
			mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{Created: created, CreatedBy: "fieldgate base: CA certificates, nonroot user, /tmp"}},
			mutate.Addendum{Layer: app, MediaType: types.OCILayer, History: v1.History{Created: created, CreatedBy: "fieldgate " + p.name + " " + ip.target.String() + " " + r.version}},
		)
		if err != nil {
			return v1.Hash{}, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return v1.Hash{}, err
		}
		cf = cf.DeepCopy()
		cf.Created = created
		cf.OS, cf.Architecture, cf.Variant = ip.platform.OS, ip.platform.Architecture, ip.platform.Variant
		cf.Config = v1.Config{
			Entrypoint:   []string{"/usr/bin/" + p.pkg()},
			Cmd:          []string{"run", "-config", "/etc/fieldgate/" + p.name + ".yaml"},
			Env:          []string{"PATH=/usr/bin"},
			User:         imageUser,
			ExposedPorts: map[string]struct{}{p.port + "/tcp": {}},
			Labels:       labels,
			StopSignal:   "SIGTERM",
		}
		if p.stateDir != "" {
			cf.Config.Volumes = map[string]struct{}{p.stateDir: {}}
			cf.Config.WorkingDir = p.stateDir
		}
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return v1.Hash{}, err
		}
		platform := ip.platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &platform}})
	}
	idx = mutate.Annotations(idx, labels).(v1.ImageIndex)

	dir := r.imageLayout(p)
	if err := os.RemoveAll(dir); err != nil {
		return v1.Hash{}, err
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		// The full reference in both: podman names a loaded image from ref.name, docker and containerd from
		// image.name (a bare tag in ref.name would leave podman's image nameless).
		"org.opencontainers.image.ref.name": r.imageName(p),
		"io.containerd.image.name":          r.imageName(p),
	})); err != nil {
		return v1.Hash{}, err
	}
	if err := r.tarFolder(dir, dir+".tar"); err != nil {
		return v1.Hash{}, err
	}
	return idx.Digest()
}

// file is one entry of a layer: a folder when body is nil and mode has fs.ModeDir.
type file struct {
	path string // relative, no leading slash
	mode fs.FileMode
	uid  int
	body []byte
}

// baseFiles are the base layer: what a static Go program needs from a root file system.
func baseFiles() []file {
	var certs bytes.Buffer
	for root := range bundle.Roots() {
		// A PEM bundle cannot carry the few "distrust after" constraints of the Mozilla store; like Debian's
		// ca-certificates, the certificate is included.
		pem.Encode(&certs, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate})
	}
	dir := fs.ModeDir | 0o755
	return []file{
		{path: "etc", mode: dir},
		{path: "etc/group", mode: 0o644, body: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{path: "etc/passwd", mode: 0o644, body: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{path: "etc/ssl", mode: dir},
		{path: "etc/ssl/certs", mode: dir},
		{path: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, body: certs.Bytes()},
		{path: "home", mode: dir},
		{path: "home/nonroot", mode: fs.ModeDir | 0o700, uid: imageUID},
		{path: "tmp", mode: fs.ModeDir | fs.ModeSticky | 0o777},
	}
}

// programFiles are p's layer: the binary, the default configuration (the package's template; mount your own
// over it) and the state folder, owned by the image's user.
func (r *release) programFiles(p program, bin string) ([]file, error) {
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	config, err := os.ReadFile(filepath.Join(r.root, "deploy", p.name+".yaml"))
	if err != nil {
		return nil, err
	}
	dir := fs.ModeDir | 0o755
	files := []file{
		{path: "etc", mode: dir},
		{path: "etc/fieldgate", mode: dir},
		{path: "etc/fieldgate/" + p.name + ".yaml", mode: 0o644, body: config},
		{path: "usr", mode: dir},
		{path: "usr/bin", mode: dir},
		{path: "usr/bin/" + p.pkg(), mode: 0o755, body: binary},
	}
	if p.stateDir != "" {
		files = append(files,
			file{path: "var", mode: dir},
			file{path: "var/lib", mode: dir},
			file{path: p.stateDir[1:], mode: fs.ModeDir | 0o700, uid: imageUID},
		)
	}
	return files, nil
}

// layer makes a gzip-compressed OCI layer of files, every time stamp r.epoch.
func (r *release) layer(files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	for _, f := range files {
		h := &tar.Header{
			Name:    f.path,
			Mode:    int64(f.mode.Perm()),
			Uid:     f.uid,
			Gid:     f.uid,
			ModTime: r.epoch,
			Format:  tar.FormatPAX,
		}
		if f.mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		if f.mode.IsDir() {
			h.Typeflag, h.Name = tar.TypeDir, f.path+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// tarFolder writes the folder dir as the tar file out, sorted, with fixed owners and time stamps: the OCI
// archive that docker load and podman load read.
func (r *release) tarFolder(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, ModTime: r.epoch, Format: tar.FormatPAX, Typeflag: tar.TypeReg}
		if d.IsDir() {
			h.Name, h.Mode, h.Typeflag = h.Name+"/", 0o755, tar.TypeDir
			return tw.WriteHeader(h)
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err = tw.Write(body)
		return err
	})
	if err != nil {
		return fmt.Errorf("tar %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
