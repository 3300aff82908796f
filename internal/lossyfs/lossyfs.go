//go:build linux && (amd64 || arm64)

// Package lossyfs is a file system for power-loss tests: a FUSE mount over a directory that keeps every write in
// memory until the file is fsynced (fsync or fdatasync), as a disk's volatile write cache does, and forgets
// whatever is not synced when the test cuts the power. A kill -9 keeps the kernel's page cache, so it proves
// nothing about fsync; this does.
//
// What it models: file data and file sizes are durable only once the file is synced. What it does not: the
// creation, renaming and deletion of files are durable at once (the gateway's files are created at its first
// start, long before the power is cut), and a sync writes the file's pages in order, so a cut never tears a sync
// half way (the file system's journal would not either).
//
// The test process serves the file system, so it must not use the mount itself: a Go process whose thread faults
// on a page of the mount (bbolt reads through mmap) waits for its own FUSE server, which a garbage collection
// stopping the world never lets run. Run what uses the mount in another process, and look at what survived in
// Backing while the power is off.
//
// It needs /dev/fuse and the right to mount (root, here); Mount skips the test and says why otherwise.
package lossyfs

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate/internal/testutil"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

const pageSize = 4096

// FS is a mounted lossy file system.
type FS struct {
	// Dir is where the file system is mounted; Backing is the directory that holds what survived.
	Dir, Backing string

	t      testing.TB
	mu     sync.Mutex
	files  map[uint64]*overlay // by the backing file's inode number
	server *fuse.Server
	cuts   int
	synced int64 // bytes written to Backing by syncs
}

// overlay is what was written to one file since its last sync.
type overlay struct {
	pages map[int64][]byte // page index → its content, pageSize bytes
	size  int64            // the file's size as the writer sees it; -1: the backing file's
}

// Mount mounts a lossy file system over a fresh backing directory and unmounts it at the end of the test. It
// skips the test when FUSE is not available.
func Mount(t testing.TB) *FS {
	t.Helper()
	if e := os.Getenv(testutil.EmulatorEnv); e != "" {
		t.Skipf("power-loss tests do not run under an emulator (%s): it would serve FUSE slowly and says nothing about a board's storage", e)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("power-loss test needs FUSE: %v", err)
	}
	f := &FS{Dir: filepath.Join(t.TempDir(), "mnt"), Backing: filepath.Join(t.TempDir(), "backing"), t: t,
		files: map[uint64]*overlay{}}
	for _, d := range []string{f.Dir, f.Backing} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.mount(); err != nil {
		t.Skipf("power-loss test needs a FUSE mount, which failed: %v", err)
	}
	t.Cleanup(func() {
		if f.server != nil {
			_ = f.server.Unmount()
		}
	})
	return f
}

func (f *FS) mount() error {
	root := &fs.LoopbackRoot{Path: f.Backing}
	var st syscall.Stat_t
	if err := syscall.Stat(f.Backing, &st); err != nil {
		return err
	}
	root.Dev = st.Dev
	root.NewNode = func(r *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
		return &node{LoopbackNode: fs.LoopbackNode{RootData: r}, fs: f}
	}
	rootNode := root.NewNode(root, nil, "", &st)
	root.RootNode = rootNode
	zero := time.Duration(0)
	srv, err := fs.Mount(f.Dir, rootNode, &fs.Options{
		// No caching of names or attributes: a size that a cut forgets must not linger.
		EntryTimeout: &zero, AttrTimeout: &zero, NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{FsName: "lossyfs", Name: "lossyfs", DisableXAttrs: true,
			DirectMount: true}, // mount(2) itself, as root, rather than the fusermount helper
	})
	if err != nil {
		return err
	}
	f.server = srv
	return nil
}

// CutPower forgets every write that was not synced and unmounts, which drops the kernel's page cache of the
// mount (it still holds the forgotten data). Kill the processes using the file system first: the unmount waits
// for their files to be closed. Backing then holds what survived; PowerOn mounts it again.
func (f *FS) CutPower() {
	f.t.Helper()
	f.mu.Lock()
	f.files = map[uint64]*overlay{}
	f.cuts++
	f.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f.server.Unmount()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("lossyfs: unmount after the power cut: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.server.Wait()
	f.server = nil
}

// PowerOn mounts the file system again after CutPower.
func (f *FS) PowerOn() {
	f.t.Helper()
	if err := f.mount(); err != nil {
		f.t.Fatalf("lossyfs: mount after the power cut: %v", err)
	}
}

// Synced returns the bytes that syncs wrote to the backing directory so far.
func (f *FS) Synced() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.synced
}

// overlayOf returns the overlay of the backing file with inode number ino, creating it; the caller holds mu.
func (f *FS) overlayOf(ino uint64) *overlay {
	o := f.files[ino]
	if o == nil {
		o = &overlay{pages: map[int64][]byte{}, size: -1}
		f.files[ino] = o
	}
	return o
}

// node is a loopback node whose files keep their writes in an overlay.
type node struct {
	fs.LoopbackNode
	fs *FS
}

var (
	_ fs.NodeOpener    = (*node)(nil)
	_ fs.NodeCreater   = (*node)(nil)
	_ fs.NodeGetattrer = (*node)(nil)
	_ fs.NodeSetattrer = (*node)(nil)
)

func (n *node) backingPath() string {
	return filepath.Join(n.RootData.Path, n.Path(n.Root()))
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	flags &^= syscall.O_APPEND | fuse.FMODE_EXEC
	trunc := flags&syscall.O_TRUNC != 0
	f, err := os.OpenFile(n.backingPath(), int(flags&^syscall.O_TRUNC), 0)
	if err != nil {
		return nil, 0, fs.ToErrno(err)
	}
	h, errno := n.fs.newFile(f)
	if errno == 0 && trunc {
		n.fs.mu.Lock()
		o := n.fs.overlayOf(h.ino)
		o.pages, o.size = map[int64][]byte{}, 0
		n.fs.mu.Unlock()
	}
	return h, 0, errno
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	p := filepath.Join(n.backingPath(), name)
	f, err := os.OpenFile(p, int(flags&^syscall.O_APPEND)|os.O_CREATE, os.FileMode(mode))
	if err != nil {
		return nil, nil, 0, fs.ToErrno(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, nil, 0, fs.ToErrno(err)
	}
	child := n.NewInode(ctx, n.RootData.NewNode(n.RootData, n.EmbeddedInode(), name, &st),
		fs.StableAttr{Mode: uint32(st.Mode), Ino: st.Ino})
	h, errno := n.fs.newFile(f)
	out.FromStat(&st)
	return child, h, 0, errno
}

func (n *node) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := fh.(*file); ok {
		return h.Getattr(ctx, out)
	}
	if errno := n.LoopbackNode.Getattr(ctx, nil, out); errno != 0 {
		return errno
	}
	n.fs.mu.Lock()
	if o := n.fs.files[out.Ino]; o != nil && o.size >= 0 {
		out.Size = uint64(o.size)
	}
	n.fs.mu.Unlock()
	return 0
}

func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if h, ok := fh.(*file); ok {
		return h.Setattr(ctx, in, out)
	}
	if _, ok := in.GetSize(); ok {
		return syscall.EINVAL // truncate by path: not used by what this package tests
	}
	return n.LoopbackNode.Setattr(ctx, nil, in, out)
}

// file is an open file: reads see the backing file under the overlay, writes go to the overlay, a sync writes
// the overlay to the backing file and syncs it.
type file struct {
	fs  *FS
	f   *os.File
	ino uint64
}

var (
	_ fs.FileReader    = (*file)(nil)
	_ fs.FileWriter    = (*file)(nil)
	_ fs.FileFsyncer   = (*file)(nil)
	_ fs.FileFlusher   = (*file)(nil)
	_ fs.FileReleaser  = (*file)(nil)
	_ fs.FileGetattrer = (*file)(nil)
	_ fs.FileSetattrer = (*file)(nil)
)

func (f *FS) newFile(osf *os.File) (*file, syscall.Errno) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(osf.Fd()), &st); err != nil {
		osf.Close()
		return nil, fs.ToErrno(err)
	}
	return &file{fs: f, f: osf, ino: st.Ino}, 0
}

// size is the file's size as the writer sees it; the caller holds fs.mu.
func (h *file) size(o *overlay) (int64, error) {
	if o != nil && o.size >= 0 {
		return o.size, nil
	}
	fi, err := h.f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// page returns page i as the writer sees it: the overlay's, else the backing file's, with zeros past the size
// the writer sees. The caller holds fs.mu.
func (h *file) page(o *overlay, i int64, size int64) ([]byte, error) {
	if p, ok := o.pages[i]; ok {
		return p, nil
	}
	p := make([]byte, pageSize)
	if i*pageSize < size {
		n, err := h.f.ReadAt(p, i*pageSize)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		clear(p[n:]) // past the backing file's end: the overlay extended it
	}
	if end := size - i*pageSize; end < pageSize {
		clear(p[max(end, 0):])
	}
	return p, nil
}

func (h *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	o := h.fs.files[h.ino]
	size, err := h.size(o)
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	if off >= size {
		return fuse.ReadResultData(nil), 0
	}
	n := min(int64(len(dest)), size-off)
	out := dest[:n]
	if o == nil {
		m, err := h.f.ReadAt(out, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fs.ToErrno(err)
		}
		clear(out[m:])
		return fuse.ReadResultData(out), 0
	}
	for done := int64(0); done < n; {
		i := (off + done) / pageSize
		p, err := h.page(o, i, size)
		if err != nil {
			return nil, fs.ToErrno(err)
		}
		done += int64(copy(out[done:], p[(off+done)-i*pageSize:]))
	}
	return fuse.ReadResultData(out), 0
}

func (h *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	o := h.fs.overlayOf(h.ino)
	size, err := h.size(o)
	if err != nil {
		return 0, fs.ToErrno(err)
	}
	for done := 0; done < len(data); {
		i := (off + int64(done)) / pageSize
		p, err := h.page(o, i, size)
		if err != nil {
			return 0, fs.ToErrno(err)
		}
		done += copy(p[(off+int64(done))-i*pageSize:], data[done:])
		o.pages[i] = p
	}
	o.size = max(size, off+int64(len(data)))
	return uint32(len(data)), 0
}

func (h *file) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok {
		h.fs.mu.Lock()
		o := h.fs.overlayOf(h.ino)
		size, err := h.size(o)
		if err == nil && int64(sz) < size {
			// Cut pages past the new end, and zero the tail of the last one.
			for i, p := range o.pages {
				switch start := i * pageSize; {
				case start >= int64(sz):
					delete(o.pages, i)
				case start+pageSize > int64(sz):
					clear(p[int64(sz)-start:])
				}
			}
		}
		o.size = int64(sz)
		h.fs.mu.Unlock()
	}
	return h.Getattr(ctx, out)
}

func (h *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(h.f.Fd()), &st); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStat(&st)
	h.fs.mu.Lock()
	if o := h.fs.files[h.ino]; o != nil && o.size >= 0 {
		out.Size = uint64(o.size)
	}
	h.fs.mu.Unlock()
	return 0
}

// Fsync writes the overlay to the backing file, in page order, and syncs it: from then on it survives a cut.
func (h *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	o := h.fs.files[h.ino]
	if o == nil {
		return 0
	}
	if o.size >= 0 {
		if err := h.f.Truncate(o.size); err != nil {
			return fs.ToErrno(err)
		}
	}
	for i, p := range o.pages {
		n := int64(pageSize)
		if o.size >= 0 {
			n = min(n, o.size-i*pageSize)
		}
		if n <= 0 {
			continue
		}
		if _, err := h.f.WriteAt(p[:n], i*pageSize); err != nil {
			return fs.ToErrno(err)
		}
		h.fs.synced += n
	}
	if err := h.f.Sync(); err != nil {
		return fs.ToErrno(err)
	}
	delete(h.fs.files, h.ino)
	return 0
}

func (h *file) Flush(ctx context.Context) syscall.Errno { return 0 } // close(2) does not sync

func (h *file) Release(ctx context.Context) syscall.Errno {
	return fs.ToErrno(h.f.Close())
}
