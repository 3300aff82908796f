package main

// Dead letters over HTTP (list, export, replay), their counters by class, and the replay itself.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/buffer"
)

// deadLetterClasses are the values of the reason label of fieldgate_dead_letters_total: a fixed set, so the
// label stays bounded whatever a source puts in DeadLetter.Class.
var deadLetterClasses = []string{fieldgate.DeadLetterDecode, fieldgate.DeadLetterUnrouted, fieldgate.DeadLetterTooLarge,
	fieldgate.DeadLetterInvalid, fieldgate.DeadLetterSparkplug, fieldgate.DeadLetterOther}

// deadLetterCounts counts dead letters by class, indexed as deadLetterClasses.
type deadLetterCounts [6]atomic.Uint64

func (c *deadLetterCounts) add(class string) {
	for i, k := range deadLetterClasses {
		if k == class {
			c[i].Add(1)
			return
		}
	}
	c[len(c)-1].Add(1) // other
}

// payloadPreview is how much of a payload GET /api/deadletters shows.
const payloadPreview = 1024

// deadLetterJSON is one dead letter in GET /api/deadletters:
//
//	{
//	  "id": 1234,                        stable while stored; newer letters have higher ids
//	  "input": "mqtt:plant-sensors",     the input (kind:name) or component ("forward") that rejected it
//	  "origin": "plant/l1/p1/telemetry", MQTT topic, device address, or Kafka topic and key
//	  "time": "2026-12-01T08:00:00.123Z",when it was rejected (RFC 3339, UTC)
//	  "reason": "…",                     why, for a person
//	  "class": "decode",                 decode, unrouted, too_large, invalid, sparkplug, kafka, or "" (older letters)
//	  "payload": "{\"ts\":…",            the first KiB of the payload as text: invalid UTF-8 replaced by U+FFFD;
//	                                     render it as text, never as HTML
//	  "payload_bytes": 10485760,         the payload's size as received
//	  "truncated": true                  payload is not all of it (cut here, or stored cut)
//	}
type deadLetterJSON struct {
	deadLetterHead
	Payload      string `json:"payload"`
	PayloadBytes int    `json:"payload_bytes"`
	Truncated    bool   `json:"truncated"`
}

// deadLetterHead is what the list and the export say of every letter alike.
type deadLetterHead struct {
	ID     uint64    `json:"id"`
	Input  string    `json:"input"`
	Origin string    `json:"origin"`
	Time   time.Time `json:"time"`
	Reason string    `json:"reason"`
	Class  string    `json:"class"`
}

func headOf(id uint64, d fieldgate.DeadLetter) deadLetterHead {
	return deadLetterHead{ID: id, Input: d.Source, Origin: d.Origin, Time: d.Time, Reason: d.Reason, Class: d.Class}
}

// deadLetterPage is the body of GET /api/deadletters:
//
//	{"dead_letters": [...newest first...], "next_before": 1200, "stored": 57}
//
// next_before is the before= of the next page (absent on the last page); stored is how many dead letters the
// buffer holds in all (any input, any time).
type deadLetterPage struct {
	DeadLetters []deadLetterJSON `json:"dead_letters"`
	NextBefore  uint64           `json:"next_before,omitempty"`
	Stored      int64            `json:"stored"`
}

// deadLetterExport is one line of GET /api/deadletters/export (NDJSON): the letter with its whole stored payload
// in base64 ("payload_base64"), and "stored_truncated" when even the stored payload is only its start.
type deadLetterExport struct {
	deadLetterHead
	PayloadBase64   []byte `json:"payload_base64"`
	PayloadBytes    int    `json:"payload_bytes"`
	StoredTruncated bool   `json:"stored_truncated"`
}

// replayResult is the body of POST /api/deadletters/replay, and what `gateway deadletters replay` prints.
type replayResult struct {
	Replayed      int `json:"replayed"`       // letters that decoded now: their readings committed, the letters deleted
	Readings      int `json:"readings"`       // the readings they gave
	StillFailing  int `json:"still_failing"`  // letters that still fail: kept, with their new reason
	NotReplayable int `json:"not_replayable"` // letters no current input can decode again (kept as they were)
}

func previewOf(id uint64, d fieldgate.DeadLetter) deadLetterJSON {
	size := max(d.Size, len(d.Payload))
	p := d.Payload
	if len(p) > payloadPreview {
		p = p[:payloadPreview]
		// Do not cut a character in two: drop an incomplete last one.
		i := len(p) - 1
		for i > 0 && len(p)-i < utf8.UTFMax && !utf8.RuneStart(p[i]) {
			i--
		}
		if !utf8.FullRune(p[i:]) {
			p = p[:i]
		}
	}
	return deadLetterJSON{deadLetterHead: headOf(id, d),
		Payload: strings.ToValidUTF8(string(p), "\uFFFD"), PayloadBytes: size, Truncated: len(p) < size}
}

// deadLetterFilter reads input, since, before and limit from the query (or a form). input is an input's name
// (or kind:name, or "forward"); since is RFC 3339 or a duration back from now (1h).
func (g *gateway) deadLetterFilter(r *http.Request) (buffer.DeadLetterFilter, error) {
	var f buffer.DeadLetterFilter
	if in := r.FormValue("input"); in != "" {
		f.Source = in
		for _, i := range g.inputsSnapshot() {
			if i.name == in {
				f.Source = i.kind + ":" + i.name
			}
		}
	}
	if s := r.FormValue("since"); s != "" {
		t, err := parseSince(s, time.Now())
		if err != nil {
			return f, err
		}
		f.Since = t
	}
	if s := r.FormValue("before"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return f, fmt.Errorf("before=%q: want a dead letter id", s)
		}
		f.Before = n
	}
	if s := r.FormValue("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return f, fmt.Errorf("limit=%q: want 1 to 1000", s)
		}
		f.Limit = n
	}
	return f, nil
}

// parseSince reads an RFC 3339 time or a duration back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("since=%q: want an RFC 3339 time (2026-12-01T08:00:00Z) or a duration back from now (1h)", s)
}

// deadLetterRoutes adds the dead-letter API to mux:
//
//	GET  /api/deadletters?input=&since=&before=&limit=   a page (default 100), newest first (deadLetterPage)
//	GET  /api/deadletters/export?input=&since=           every selected letter, NDJSON (deadLetterExport)
//	POST /api/deadletters/replay?input=&since=           replay through the current mappings (replayResult);
//	                                                     403 unless http.allow_replay is true
func (g *gateway) deadLetterRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/deadletters", func(w http.ResponseWriter, r *http.Request) {
		f, err := g.deadLetterFilter(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if f.Limit == 0 {
			f.Limit = 100
		}
		list, next, err := g.buf.ListDeadLetters(f)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		page := deadLetterPage{DeadLetters: make([]deadLetterJSON, 0, len(list)), NextBefore: next, Stored: g.buf.Stats().DeadLetters}
		for _, l := range list {
			page.DeadLetters = append(page.DeadLetters, previewOf(l.ID, l.DeadLetter))
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(page)
	})
	mux.HandleFunc("GET /api/deadletters/export", func(w http.ResponseWriter, r *http.Request) {
		f, err := g.deadLetterFilter(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.Limit, f.Before = 0, 0
		list, _, err := g.buf.ListDeadLetters(f)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Content-Disposition", `attachment; filename="deadletters.ndjson"`)
		enc := json.NewEncoder(w)
		for _, l := range list {
			d := l.DeadLetter
			_ = enc.Encode(deadLetterExport{deadLetterHead: headOf(l.ID, d),
				PayloadBase64: d.Payload, PayloadBytes: max(d.Size, len(d.Payload)), StoredTruncated: d.Size > len(d.Payload)})
		}
	})
	mux.HandleFunc("POST /api/deadletters/replay", func(w http.ResponseWriter, r *http.Request) {
		if !g.config().HTTP.AllowReplay {
			http.Error(w, "replay is disabled: set http.allow_replay: true in the gateway's configuration to allow it", http.StatusForbidden)
			return
		}
		f, err := g.deadLetterFilter(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res, err := g.replay(r.Context(), f)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	})
}

// replayBatch is how many dead letters one Resolve carries (one transaction).
const replayBatch = 256

// replay sends the dead letters f selects through the current mapping of the input that stored them
// (fieldgate.Replayer): those that decode now are committed as readings and deleted, in one transaction per
// batch (buffer.Resolve), so each becomes readings exactly once even across a crash or a concurrent replay;
// those that still fail keep the new reason; those no running input can decode again are left as they are.
// Replays run one at a time. ctx ending stops it between batches.
func (g *gateway) replay(ctx context.Context, f buffer.DeadLetterFilter) (replayResult, error) {
	g.replayMu.Lock()
	defer g.replayMu.Unlock()
	inputs := map[string]*input{}
	for _, in := range g.inputsSnapshot() {
		inputs[in.kind+":"+in.name] = in
	}
	var res replayResult
	f.Limit = replayBatch
	for {
		list, next, err := g.buf.ListDeadLetters(f)
		if err != nil {
			return res, err
		}
		var rs []buffer.Resolution
		for _, l := range list {
			in := inputs[l.Source]
			var rp fieldgate.Replayer
			if in != nil {
				if it := in.cur.Load(); it != nil {
					rp, _ = it.src.Source.(fieldgate.Replayer)
				}
			}
			if rp == nil {
				res.NotReplayable++
				continue
			}
			readings, err := rp.Replay(l.DeadLetter)
			switch {
			case errors.Is(err, fieldgate.ErrNotReplayable):
				res.NotReplayable++
				continue
			case err != nil:
				rs = append(rs, buffer.Resolution{ID: l.ID, Reason: err.Error()})
			default:
				readings, _ = in.checkSourceTimes(readings)
				rs = append(rs, buffer.Resolution{ID: l.ID, Readings: readings})
			}
		}
		done, err := g.buf.Resolve(ctx, rs)
		if err != nil {
			return res, err
		}
		res.Replayed += done.Replayed
		res.Readings += done.Readings
		res.StillFailing += done.StillFailing
		if next == 0 {
			break
		}
		f.Before = next
	}
	if res.Replayed > 0 || res.StillFailing > 0 {
		g.log.Info("dead letters replayed", "source", f.Source, "since", f.Since, "replayed", res.Replayed, "readings", res.Readings,
			"still_failing", res.StillFailing, "not_replayable", res.NotReplayable)
	}
	return res, nil
}
