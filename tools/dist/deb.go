package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// deb writes r.out/fieldgate-NAME_VERSION_ARCH.deb from deploy/debian/fieldgate-NAME.yaml, with bin as the
// binary, and returns its path.
func (r *release) deb(p program, arch, bin string) (string, error) {
	vars := map[string]string{"ARCH": arch, "VERSION": r.version, "BINARY": bin}
	cfg, err := nfpm.ParseFileWithEnvMapping(filepath.Join(r.root, "deploy/debian", p.pkg()+".yaml"), func(k string) string { return vars[k] })
	if err != nil {
		return "", err
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return "", err
	}
	info = nfpm.WithDefaults(info)
	info.MTime = r.epoch
	for _, c := range info.Contents {
		if c.Source != "" && !filepath.IsAbs(c.Source) {
			c.Source = filepath.Join(r.root, c.Source)
		}
	}
	for _, s := range []*string{&info.Scripts.PreInstall, &info.Scripts.PostInstall, &info.Scripts.PreRemove, &info.Scripts.PostRemove} {
		if *s != "" {
			*s = filepath.Join(r.root, *s)
		}
	}
	// A native package's changelog (Debian policy 12.7), compressed without a name or time stamp.
	changelog, err := r.changelog(p, info.Maintainer)
	if err != nil {
		return "", err
	}
	info.Contents = append(info.Contents, &files.Content{
		Source:      changelog,
		Destination: "/usr/share/doc/" + p.pkg() + "/changelog.gz",
		FileInfo:    &files.ContentFileInfo{Mode: 0o644},
	})

	path := filepath.Join(r.out, deb.Default.ConventionalFileName(info))
	var buf bytes.Buffer
	if err := deb.Default.Package(info, &buf); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, buf.Bytes(), 0o644)
}

// changelog writes a one-entry Debian changelog for this build into r.work and returns its path.
func (r *release) changelog(p program, maintainer string) (string, error) {
	text := fmt.Sprintf("%s (%s) stable; urgency=medium\n\n  * Built from commit %s of https://github.com/fieldgate/fieldgate.\n\n -- %s  %s\n",
		p.pkg(), r.version, r.commit, maintainer, r.epoch.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write([]byte(text))
	if err := zw.Close(); err != nil {
		return "", err
	}
	path := filepath.Join(r.work, p.pkg()+".changelog.gz")
	return path, os.WriteFile(path, gz.Bytes(), 0o644)
}
