package cratedb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/fieldgate/fieldgate"
)

// TestCrateDBGrammarIntegration checks every statement fieldgate sends to CrateDB against CrateDB's own SQL
// grammar: the DDL of Schema, and each statement a Writer runs, captured on the wire as the writer sends it. The
// grammar is CrateDB's ANTLR grammar compiled to JavaScript (npm @cratedb/cratedb-sqlparse, pinned in
// scripts/npm/package.json), run by scripts/npm/cratedb-parse.js. It proves syntax only: names, types and the
// rules of the analyzer (conflict targets, generated columns) need a server.
//
// It runs when FIELDGATE_TEST_NPM_DIR names the npm directory (scripts/testenv.sh sets it); then a missing node or
// package is a failure, not a skip.
func TestCrateDBGrammarIntegration(t *testing.T) {
	npmDir := os.Getenv("FIELDGATE_TEST_NPM_DIR")
	if npmDir == "" {
		t.Skip("FIELDGATE_TEST_NPM_DIR is not set")
	}
	const schema = "doc"
	ddl, err := Schema(CrateDB, schema, 4, sizes)
	if err != nil {
		t.Fatal(err)
	}
	ddlStmts := statements(ddl)
	if len(ddlStmts) != 3+len(sizes) {
		t.Fatalf("the CrateDB DDL splits into %d statements, want %d:\n%s", len(ddlStmts), 3+len(sizes), ddl)
	}
	w, sent := writerStatements(t, Config{Dialect: CrateDB, Schema: schema})

	// Statements CrateDB's grammar refuses, each one slip away from the raw upsert the writer sends: if the parser
	// accepted them, it would accept anything and the test would prove nothing.
	refused := []struct{ what, sql string }{
		{"PostgreSQL's ON CONFLICT ON CONSTRAINT", strings.Replace(w.raw.upsert,
			"ON CONFLICT (device, metric, ts, month)", "ON CONFLICT ON CONSTRAINT readings_pkey", 1)},
		{"a misspelt array cast", strings.Replace(w.raw.upsert, "timestamp with time zone[]", "timestamp with timezone[]", 1)},
	}
	for _, r := range refused {
		if r.sql == w.raw.upsert {
			t.Fatalf("%s: the raw upsert no longer contains the text the control changes: %s", r.what, w.raw.upsert)
		}
	}

	fieldgateSQL := append(append([]string(nil), ddlStmts...), sent...)
	all := append([]string(nil), fieldgateSQL...)
	for _, r := range refused {
		all = append(all, r.sql)
	}
	results, version := parseCrateDB(t, npmDir, all)
	t.Logf("checked %d statements (%d DDL, %d sent by the writer) with the grammar of CrateDB %s",
		len(fieldgateSQL), len(ddlStmts), len(sent), version)
	for i, stmt := range fieldgateSQL {
		if r := results[i]; !r.Accepted {
			t.Errorf("CrateDB's grammar refuses a statement fieldgate sends: %s\n%s", r.Error, stmt)
		}
	}
	for i, r := range refused {
		if v := results[len(fieldgateSQL)+i]; v.Accepted || v.Error == "" {
			t.Errorf("the grammar accepts %s (accepted %v, error %q), so it proves nothing:\n%s", r.what, v.Accepted, v.Error, r.sql)
		}
	}
}

// crateParseResult is cratedb-parse.js's verdict on one statement.
type crateParseResult struct {
	Accepted bool   `json:"accepted"`
	Type     string `json:"type"`
	Error    string `json:"error"`
}

// parseCrateDB runs scripts/npm/cratedb-parse.js in npmDir over stmts and returns one result per statement, in
// order, and the CrateDB version the grammar was compiled from. A missing node, script or package fails the test.
func parseCrateDB(t *testing.T, npmDir string, stmts []string) ([]crateParseResult, string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("FIELDGATE_TEST_NPM_DIR is set but node is not installed: %v", err)
	}
	script := filepath.Join(npmDir, "cratedb-parse.js")
	pkg := filepath.Join(npmDir, "node_modules", "@cratedb", "cratedb-sqlparse", "package.json")
	for _, f := range []string{script, pkg} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("FIELDGATE_TEST_NPM_DIR is set but %v (run npm ci in %s)", err, npmDir)
		}
	}
	in, err := json.Marshal(stmts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = npmDir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
	}
	var res struct {
		Version string             `json:"cratedb_version"`
		Results []crateParseResult `json:"results"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node %s printed no verdicts: %v\n%s", script, err, out)
	}
	if len(res.Results) != len(stmts) {
		t.Fatalf("node %s gave %d verdicts for %d statements", script, len(res.Results), len(stmts))
	}
	return res.Results, res.Version
}

// writerStatements makes a Writer of cfg (window sizes: sizes) talk to a stand-in server, calls each of its methods
// once, and returns the writer and every distinct SQL text it sent, in order. The stand-in refuses every
// statement sent with parameters with a unique violation (SQLSTATE 23505), so the writer also sends the statement
// it falls back on, and accepts those without (REFRESH TABLE), so the writer goes on to its query. The test fails
// if a statement the writer prepared in New was not sent.
func writerStatements(t *testing.T, cfg Config) (*Writer, []string) {
	t.Helper()
	srv := startStatementRecorder(t)
	cfg.URL = fieldgate.Secret("postgres://crate@" + srv.addr + "/doc?sslmode=disable")
	w, err := New(cfg, sizes, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer w.Close(ctx)

	// The results are those of a server that refuses every write; only the statements matter here.
	_, _ = w.WriteRaw(ctx, []Raw{{Reading: reading("plc1", "temp", 0, fieldgate.Float(21.5)), Gateway: "gw1"}})
	var aggs []fieldgate.Aggregate
	for _, size := range sizes {
		aggs = append(aggs, fieldgate.Aggregate{Device: "plc1", Metric: "temp", Size: size, Start: t0, End: t0.Add(size),
			Count: 1, NumericCount: 1, Min: 21.5, Max: 21.5, Sum: 21.5, Mean: 21.5,
			First: fieldgate.Float(21.5), Last: fieldgate.Float(21.5), FirstTime: t0, LastTime: t0})
	}
	_ = w.WriteAggregates(ctx, aggs)
	_ = w.WriteDeadLetters(ctx, []DeadLetter{{Topic: "readings", Partition: 0, Offset: 7, Reason: "undecodable", Payload: []byte{1}, Time: t0}})
	_ = w.SaveCheckpoints(ctx, "central", "readings", []Checkpoint{{Partition: 0, Data: []byte(`{}`)}})
	_, _ = w.LoadCheckpoints(ctx, "central", "readings")
	_, _ = w.ReadWindow(ctx, "plc1", "temp", t0, t0.Add(time.Minute))

	sent := srv.statements()
	want := []string{w.raw.insert, w.raw.upsert, w.deadSQL, w.cpSQL, w.readSQL,
		"REFRESH TABLE " + w.tables.Raw, "REFRESH TABLE " + w.tables.Checkpoints}
	for _, size := range sizes {
		want = append(want, w.agg[size].insert, w.agg[size].upsert)
	}
	for _, stmt := range want {
		found := false
		for _, s := range sent {
			found = found || s == stmt
		}
		if !found {
			t.Errorf("the writer never sent %s\n(sent: %q)", stmt, sent)
		}
	}
	return w, sent
}

// statementRecorder is a stand-in PostgreSQL server on a loopback port that records the SQL it is sent.
type statementRecorder struct {
	addr string
	mu   sync.Mutex
	sql  []string // distinct, in the order first sent
}

func startStatementRecorder(t *testing.T) *statementRecorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &statementRecorder{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if err := r.serve(c); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					t.Errorf("stand-in server: %v", err)
				}
			}()
		}
	}()
	return r
}

func (r *statementRecorder) record(sql string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.sql {
		if s == sql {
			return
		}
	}
	r.sql = append(r.sql, sql)
}

func (r *statementRecorder) statements() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.sql...)
}

// serve speaks the server side of one connection until the client terminates it: startup without
// authentication, simple queries answered as done, extended-protocol statements refused at Parse.
func (r *statementRecorder) serve(c net.Conn) error {
	be := pgproto3.NewBackend(c, c)
	for {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return err
		}
		if _, ok := msg.(*pgproto3.StartupMessage); ok {
			break
		}
		if _, err := c.Write([]byte{'N'}); err != nil { // no TLS or GSS encryption
			return err
		}
	}
	be.Send(&pgproto3.AuthenticationOk{})
	for _, p := range [][2]string{{"client_encoding", "UTF8"}, {"standard_conforming_strings", "on"},
		{"server_version", "14.0"}, {"crate_version", "6.1.1"}} {
		be.Send(&pgproto3.ParameterStatus{Name: p[0], Value: p[1]})
	}
	be.Send(&pgproto3.BackendKeyData{ProcessID: 1, SecretKey: []byte{0, 0, 0, 1}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if err := be.Flush(); err != nil {
		return err
	}
	for {
		msg, err := be.Receive()
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			r.record(m.String)
			tag := "OK"
			if f := strings.Fields(m.String); len(f) > 0 {
				tag = strings.ToUpper(f[0]) + " 1"
			}
			be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case *pgproto3.Parse:
			r.record(m.Query)
			// The client pipelines Describe and Sync behind Parse; like a real server, the stand-in answers only
			// the Sync after an error.
			be.Send(&pgproto3.ErrorResponse{Severity: "ERROR", Code: "23505", Message: "refused by the stand-in server"})
		case *pgproto3.Sync:
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case *pgproto3.Terminate:
			return nil
		default:
			continue // Describe, Bind, Execute after a refused Parse: discarded up to the Sync
		}
		if err := be.Flush(); err != nil {
			return fmt.Errorf("answer %T: %w", msg, err)
		}
	}
}
