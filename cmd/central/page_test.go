package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/net/html"

	"github.com/fieldgate/fieldgate/internal/pgtest"
	"github.com/fieldgate/fieldgate/internal/testutil"
)

// TestStatusPageInBrowser loads the central service's status page in headless Chromium while it loads
// PostgreSQL: every assigned partition with its lag, the windows fired, the database's rows and the dead letters
// by reason are shown; screenshots at phone and panel size are kept as artefacts.
func TestStatusPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser against the service and PostgreSQL; skipped with -short")
	}
	br := testutil.NewBrowser(t)
	h := newHarness(t, 3, pgtest.NewDB(t, ""))
	cfg := h.config("page")
	cfg.HTTP.Listen = testutil.FreeAddr(t)
	h.start("a", cfg)
	h.produce(stream(6, 60, h.base, time.Second, "line1"))
	h.produceRecords([]*kgo.Record{{Key: []byte("x"), Value: []byte("\x00garbage")}})
	h.waitInvariant(30 * time.Second)

	api := "http://" + cfg.HTTP.Listen + "/api/status"
	var st statusDoc
	deadline := time.Now().Add(30 * time.Second)
	for st.DeadLetters["decode"] < 1 || len(st.Partitions) != 3 || st.Windows.Fired == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("/api/status does not show 3 partitions, fired windows and the dead letter: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
		resp, err := http.Get(api)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
	}
	if st.Database == nil || st.Database.RawRows == 0 || !st.Database.Connected {
		t.Errorf("database status: %+v", st.Database)
	}

	url := "http://" + cfg.HTTP.Listen + "/"
	dom := br.DOM(url, 3*time.Second)
	rows := testutil.Find(dom, func(n *html.Node) bool { return testutil.HasClass(n, "partition-row") })
	if len(rows) != 3 {
		t.Errorf("%d partition rows, want 3", len(rows))
	}
	for _, r := range rows {
		if cells := testutil.Find(r, func(n *html.Node) bool { return n.Data == "td" }); len(cells) != 3 || testutil.Text(cells[1]) == "" {
			t.Errorf("partition row without its lag: %q", testutil.Text(r))
		}
	}
	section := func(id string) string {
		s := testutil.Find(dom, func(n *html.Node) bool { return testutil.Attr(n, "id") == id })
		if len(s) != 1 {
			t.Fatalf("no #%s", id)
		}
		return testutil.Text(s[0])
	}
	if w := section("windows"); !strings.Contains(w, "Fired") || strings.Contains(w, "Fired0 ") {
		t.Errorf("windows: %q", w)
	}
	if db := section("database"); !strings.Contains(db, "Connectedyes") {
		t.Errorf("database: %q", db)
	}
	var decode *html.Node
	for _, r := range testutil.Find(dom, func(n *html.Node) bool { return testutil.Attr(n, "data-reason") == "decode" }) {
		decode = r
	}
	if decode == nil || !strings.Contains(testutil.Text(decode), "1") || !testutil.HasClass(decode, "bad") {
		t.Errorf("the decode dead letter is not shown in red: %v", decode)
	}

	art := testutil.ArtifactDir(t)
	br.Screenshot(url, 1024, 600, 3*time.Second, filepath.Join(art, "central-panel.png"))
	br.Screenshot(url, 390, 844, 3*time.Second, filepath.Join(art, "central-phone.png"))
}
