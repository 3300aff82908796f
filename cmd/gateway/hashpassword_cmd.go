package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// hashPasswordCmd is `gateway hash-password`: the first line of stdin (without its line ending) becomes a bcrypt
// hash for http.auth.password_bcrypt, printed on stdout. Reading stdin keeps the password out of the shell
// history and the process list.
func hashPasswordCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "gateway hash-password: unexpected argument %q (the password is read from standard input)\n", args[0])
		return exitUsage
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, "gateway hash-password:", err)
		return exitUsage
	}
	password := strings.TrimRight(line, "\r\n")
	if len(password) < 8 || len(password) > 72 {
		fmt.Fprintf(stderr, "gateway hash-password: a password of %d bytes: use 8 to 72 (bcrypt reads no further)\n", len(password))
		return exitUsage
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		fmt.Fprintln(stderr, "gateway hash-password:", err)
		return exitUsage
	}
	fmt.Fprintln(stdout, string(hash))
	return exitOK
}
