package testutil

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// Browser is headless Chromium run once per page load (chromium --headless --dump-dom / --screenshot), with a
// virtual time budget in which the page's timers run (its polls) before the DOM is dumped or the screen taken.
type Browser struct {
	t   testing.TB
	bin string
}

// NewBrowser returns the Chromium that FIELDGATE_TEST_CHROMIUM names (the chromium binary), or skips the test when
// it is unset.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	bin := os.Getenv("FIELDGATE_TEST_CHROMIUM")
	if bin == "" {
		t.Skip("FIELDGATE_TEST_CHROMIUM (path of the chromium binary) is not set")
	}
	return &Browser{t: t, bin: bin}
}

// run runs Chromium on url with a fresh profile, letting the page run for budget of virtual time first.
func (b *Browser) run(url string, budget time.Duration, args ...string) []byte {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args = append([]string{"--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--no-first-run",
		"--user-data-dir=" + b.t.TempDir(), "--virtual-time-budget=" + strconv.Itoa(int(budget/time.Millisecond))}, args...)
	cmd := exec.CommandContext(ctx, b.bin, append(args, url)...)
	var stderr SyncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.t.Fatalf("chromium %s: %v\n%s", url, err, stderr.String())
	}
	return out
}

// DOM loads url, lets it run for budget of virtual time and returns the document as it is then.
func (b *Browser) DOM(url string, budget time.Duration) *html.Node {
	b.t.Helper()
	doc, err := html.Parse(strings.NewReader(string(b.run(url, budget, "--dump-dom"))))
	if err != nil {
		b.t.Fatal(err)
	}
	return doc
}

// Screenshot loads url in a window of w×h CSS pixels, lets it run for budget and writes a PNG to path.
func (b *Browser) Screenshot(url string, w, h int, budget time.Duration, path string) image.Image {
	b.t.Helper()
	dir := b.t.TempDir()
	shot := filepath.Join(dir, "shot.png")
	b.run(url, budget, "--screenshot="+shot, "--window-size="+strconv.Itoa(w)+","+strconv.Itoa(h))
	data, err := os.ReadFile(shot)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		b.t.Fatal(err)
	}
	return img
}

// ArtifactDir returns a directory for what a test leaves to look at (screenshots): under FIELDGATE_TEST_ARTIFACTS
// if set, else under the system's temporary directory; it is kept after the test, and its path logged.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	base := os.Getenv("FIELDGATE_TEST_ARTIFACTS")
	if base == "" {
		base = filepath.Join(os.TempDir(), "fieldgate-artifacts")
	}
	dir := filepath.Join(base, strings.ReplaceAll(t.Name(), "/", "_")+"-"+time.Now().Format("20060102-150405"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("artefacts (screenshots) in %s", dir)
	return dir
}

// Find returns the elements under n for which match is true, in document order.
func Find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

// Attr returns n's attribute key, "" if it has none.
func Attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// HasClass reports whether n's class attribute lists class.
func HasClass(n *html.Node, class string) bool {
	for _, c := range strings.Fields(Attr(n, "class")) {
		if c == class {
			return true
		}
	}
	return false
}

// Text is the text of n and everything under it.
func Text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// CountPixels counts the pixels of img within tol (per 8-bit channel) of the colour r, g, b.
func CountPixels(img image.Image, r, g, b uint8, tol int) int {
	n := 0
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			if near(pr>>8, r, tol) && near(pg>>8, g, tol) && near(pb>>8, b, tol) {
				n++
			}
		}
	}
	return n
}

func near(v uint32, want uint8, tol int) bool {
	d := int(v) - int(want)
	return d >= -tol && d <= tol
}
