// Package webui serves the status pages of the gateway and the central service: one HTML document per service
// at /, its own script beside the shared stylesheet and helpers (static/) under /ui/, all embedded in the binary.
// No page uses an inline script or style, so both work under webserve.ContentSecurityPolicy (default-src 'self'),
// which webserve.Protect puts on every response of both listeners; every value is put into the document as text
// (textContent, SVG attributes), never parsed as HTML.
package webui

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"path"
	"time"
)

//go:embed static
var static embed.FS

// Mount registers GET /{$} (page's index.html) and GET /ui/{name} (a file of page, else of the shared
// static/) on mux. page is a flat file system: index.html and the page's scripts.
func Mount(mux *http.ServeMux, page fs.FS) {
	shared, _ := fs.Sub(static, "static")
	start := time.Now() // for If-Modified-Since: the assets change with the binary only
	serve := func(w http.ResponseWriter, r *http.Request, fsys fs.FS, name string) bool {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return false
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		switch path.Ext(name) {
		case ".html":
			h.Set("Content-Type", "text/html; charset=utf-8")
		case ".js":
			h.Set("Content-Type", "text/javascript; charset=utf-8")
		case ".css":
			h.Set("Content-Type", "text/css; charset=utf-8")
		}
		http.ServeContent(w, r, name, start, bytes.NewReader(data))
		return true
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if !serve(w, r, page, "index.html") {
			http.Error(w, "no page", http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /ui/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if name == "index.html" || !serve(w, r, page, name) && !serve(w, r, shared, name) {
			http.NotFound(w, r)
		}
	})
}
