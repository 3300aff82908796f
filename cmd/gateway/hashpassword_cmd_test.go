package main

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/webserve"
)

// The hash printed is one that http.auth.password_bcrypt accepts and that the password matches; too short a
// password, or an argument (a password on the command line), is refused.
func TestHashPassword(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := hashPasswordCmd(nil, strings.NewReader("correct horse battery\n"), &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	hash := strings.TrimSpace(out.String())
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse battery")); err != nil {
		t.Fatalf("%q does not match the password: %v", hash, err)
	}
	if err := webserve.Validate("0.0.0.0:9100", webserve.Auth{PasswordBcrypt: fieldgate.Secret(hash)}, webserve.TLS{}); err != nil {
		t.Fatalf("the hash is refused by the configuration: %v", err)
	}
	for name, c := range map[string]struct {
		args  []string
		stdin string
	}{"short": {nil, "short\n"}, "argument": {[]string{"secret123"}, ""}} {
		out.Reset()
		errOut.Reset()
		if code := hashPasswordCmd(c.args, strings.NewReader(c.stdin), &out, &errOut); code != exitUsage || out.Len() != 0 || errOut.Len() == 0 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", name, code, out.String(), errOut.String())
		}
	}
}
