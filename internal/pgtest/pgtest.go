// Package pgtest gives a test a PostgreSQL database of its own on the server its integration tests use
// (FIELDGATE_TEST_POSTGRES). Only tests import it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// NewDB creates a database with a random name on the server of base, a connection URL (empty: the value of
// FIELDGATE_TEST_POSTGRES; the test is skipped when that is unset too), drops it when the test ends, and returns
// its URL. A server that does not answer fails the test.
func NewDB(t testing.TB, base string) string {
	t.Helper()
	base = server(t, base)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("the test PostgreSQL server does not answer: %v", err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "fg_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(base, name); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// Drop drops now the database of dbURL, which NewDB made on the server of base (as given to NewDB), with
// whatever autovacuum would still do in it; the test's cleanup then finds it gone.
func Drop(t testing.TB, base, dbURL string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := drop(server(t, base), strings.TrimPrefix(u.Path, "/")); err != nil {
		t.Fatalf("drop database %s: %v", u.Path, err)
	}
}

func server(t testing.TB, base string) string {
	if base == "" {
		base = os.Getenv("FIELDGATE_TEST_POSTGRES")
	}
	if base == "" {
		t.Skip("FIELDGATE_TEST_POSTGRES is not set")
	}
	return base
}

func drop(base, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, base)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}
