package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// deadLettersCmd is `gateway deadletters list|export|replay`: it asks the running gateway's API. The gateway's
// address, token and certificate come from its configuration file unless -url is given.
func deadLettersCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "export" && args[0] != "replay") {
		fmt.Fprint(stderr, "Usage: gateway deadletters list|export|replay [-input NAME] [-since T] [-url URL] [-token TOKEN] [-config FILE]\n")
		return exitUsage
	}
	sub := args[0]
	fs := newFlagSet("deadletters "+sub, stderr)
	paths := configFlags(fs)
	input := fs.String("input", "", "only the dead letters of this input (its name)")
	since := fs.String("since", "", "only those rejected since `T`: an RFC 3339 time or a duration back from now (1h)")
	rawURL := fs.String("url", "", "the gateway's HTTP listener, e.g. http://127.0.0.1:9100 (default: from the configuration's http section)")
	token := fs.String("token", "", "bearer token (default: $FIELDGATE_HTTP_TOKEN, else the configuration's http.auth.token)")
	limit := fs.Int("limit", 0, "list: at most this many (default all)")
	if !parseFlags(fs, args[1:]) {
		return exitUsage
	}
	if *since != "" {
		if _, err := parseSince(*since, time.Now()); err != nil {
			fmt.Fprintln(stderr, "gateway deadletters:", err)
			return exitUsage
		}
	}
	if *token == "" {
		*token = os.Getenv("FIELDGATE_HTTP_TOKEN")
	}
	cl, base, err := apiClient(*rawURL, token, paths())
	if err != nil {
		fmt.Fprintln(stderr, "gateway deadletters:", err)
		return exitUsage
	}
	q := url.Values{}
	if *input != "" {
		q.Set("input", *input)
	}
	if *since != "" {
		q.Set("since", *since)
	}
	call := func(method, path string, q url.Values) (*http.Response, error) {
		req, err := http.NewRequest(method, base+path+"?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		if *token != "" {
			req.Header.Set("Authorization", "Bearer "+*token)
		}
		res, err := cl.Do(req)
		if err != nil {
			return nil, err
		}
		if res.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
			res.Body.Close()
			return nil, fmt.Errorf("%s %s: %s: %s", method, path, res.Status, strings.TrimSpace(string(body)))
		}
		return res, nil
	}

	switch sub {
	case "export":
		res, err := call("GET", "/api/deadletters/export", q)
		if err != nil {
			fmt.Fprintln(stderr, "gateway deadletters export:", err)
			return exitFailure
		}
		defer res.Body.Close()
		if _, err := io.Copy(stdout, res.Body); err != nil {
			fmt.Fprintln(stderr, "gateway deadletters export:", err)
			return exitFailure
		}
	case "replay":
		res, err := call("POST", "/api/deadletters/replay", q)
		if err != nil {
			fmt.Fprintln(stderr, "gateway deadletters replay:", err)
			return exitFailure
		}
		defer res.Body.Close()
		var r replayResult
		if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
			fmt.Fprintln(stderr, "gateway deadletters replay:", err)
			return exitFailure
		}
		fmt.Fprintf(stdout, "replayed %d dead letters into %d readings; %d still failing (kept with their new reason); %d not replayable (kept)\n",
			r.Replayed, r.Readings, r.StillFailing, r.NotReplayable)
	case "list":
		w := bufio.NewWriter(stdout)
		defer w.Flush()
		n := 0
		for {
			if *limit > 0 {
				q.Set("limit", strconv.Itoa(min(*limit-n, 1000)))
			}
			res, err := call("GET", "/api/deadletters", q)
			if err != nil {
				w.Flush()
				fmt.Fprintln(stderr, "gateway deadletters list:", err)
				return exitFailure
			}
			var page deadLetterPage
			err = json.NewDecoder(res.Body).Decode(&page)
			res.Body.Close()
			if err != nil {
				fmt.Fprintln(stderr, "gateway deadletters list:", err)
				return exitFailure
			}
			for _, d := range page.DeadLetters {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n\t%d bytes: %s\n", d.ID, d.Time.Format(time.RFC3339Nano), d.Input, d.Origin, d.Reason,
					d.PayloadBytes, previewLine(d.Payload, d.Truncated))
			}
			n += len(page.DeadLetters)
			if page.NextBefore == 0 || (*limit > 0 && n >= *limit) {
				break
			}
			q.Set("before", strconv.FormatUint(page.NextBefore, 10))
		}
	}
	return exitOK
}

// previewLine shows a payload on one line, quoted (control characters escaped), at most 200 characters.
func previewLine(p string, truncated bool) string {
	r := []rune(p)
	if len(r) > 200 {
		r, truncated = r[:200], true
	}
	s := strconv.Quote(string(r))
	if truncated {
		s += " …"
	}
	return s
}

// apiClient returns the HTTP client and base URL of the running gateway: rawURL if given, else the
// configuration's http.listen (a wildcard address asked on loopback), over TLS when http.tls is set (the
// gateway's certificate must be the configured one). A token not given comes from http.auth.token.
func apiClient(rawURL string, token *string, paths configPaths) (*http.Client, string, error) {
	cl := &http.Client{Timeout: 5 * time.Minute}
	if rawURL != "" {
		return cl, strings.TrimRight(rawURL, "/"), nil
	}
	l, err := loadPath(paths.file, paths.confdir, false)
	if err != nil {
		return nil, "", fmt.Errorf("%w\n(give the gateway's address with -url to skip reading the configuration)", err)
	}
	h := l.cfg.HTTP
	host, port, _ := net.SplitHostPort(h.Listen)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	if *token == "" {
		*token = h.Auth.Token.Reveal()
	}
	scheme := "http"
	if h.TLS.On() {
		scheme = "https"
		pinned, err := os.ReadFile(h.TLS.CertFile)
		if err != nil {
			return nil, "", err
		}
		block, _ := pem.Decode(pinned)
		if block == nil {
			return nil, "", fmt.Errorf("%s: no PEM certificate", h.TLS.CertFile)
		}
		cl.Transport = &http.Transport{TLSClientConfig: &tls.Config{
			// The name asked for is an address of the listener, which the certificate need not name: the leaf
			// must be the configured certificate itself instead.
			InsecureSkipVerify: true,
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 || !bytes.Equal(raw[0], block.Bytes) {
					return errors.New("the gateway's certificate is not the one in http.tls.cert_file")
				}
				return nil
			},
		}}
	}
	return cl, scheme + "://" + net.JoinHostPort(host, port), nil
}
