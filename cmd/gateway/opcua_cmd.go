package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/yamlconf"
	"github.com/fieldgate/fieldgate/protocols/opcua"
)

// opcuaCmd is `gateway opcua browse ...`: walk a server's address space and print a ready-to-use `opcua:` input
// snippet, for commissioning. The connection settings come from flags, or from an input of a config file
// (-config FILE -input NAME), so that fingerprints and passwords are not typed again.
func opcuaCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "trust" {
		return opcuaTrustCmd(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "browse" {
		fmt.Fprintf(stderr, "gateway opcua: want \"gateway opcua browse -endpoint opc.tcp://HOST:4840 ...\" or "+
			"\"gateway opcua trust -endpoint opc.tcp://HOST:4840\" (-h for the flags)\n")
		return exitUsage
	}
	fs := flag.NewFlagSet("gateway opcua browse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts                      opcua.BrowseOptions
		fingerprints, passFile    string
		configPath, inputName     string
		verbose                   bool
		stateDir                  = filepath.Join(defaultStateDir, "opcua")
		userCert, userKey, method string
	)
	fs.StringVar(&configPath, "config", "", "take endpoint, security and auth from an opcua input of this gateway config `file`")
	fs.StringVar(&inputName, "input", "", "with -config: the opcua input's `name` (default: the only one)")
	fs.StringVar(&opts.Endpoint, "endpoint", "", "server `URL`, opc.tcp://host:4840 (required without -config)")
	fs.StringVar(&opts.Node, "node", "", "node `id` to start from (default i=85, the Objects folder)")
	fs.IntVar(&opts.Depth, "depth", 0, "levels to walk below -node (default 3)")
	fs.StringVar(&opts.Name, "name", "", "input name in the printed snippet (default plc)")
	fs.StringVar(&opts.Security.Mode, "mode", "", "security mode: SignAndEncrypt (default), Sign or None")
	fs.StringVar(&opts.Security.Policy, "policy", "", "security policy (default: the strongest the server offers)")
	fs.StringVar(&fingerprints, "fingerprint", "", "SHA-256 `fingerprint`(s) of the server certificate to trust, comma-separated (gateway opcua trust shows it)")
	fs.StringVar(&opts.Security.ServerCAFile, "server-ca", "", "PEM `file` of CAs that sign the server certificate")
	fs.StringVar(&opts.Security.CertFile, "cert", "", "client application certificate `file` (default: generated into -state-dir)")
	fs.StringVar(&opts.Security.KeyFile, "key", "", "client application key `file`")
	fs.StringVar(&stateDir, "state-dir", stateDir, "`dir` of the generated client certificate: the daemon's, so that the server trusts one certificate")
	fs.StringVar(&method, "auth", "", "user authentication: anonymous (default), username or certificate")
	fs.StringVar(&opts.Auth.Username, "user", "", "user name (with -auth username)")
	fs.StringVar(&passFile, "password-file", "", "`file` holding the password (with -auth username); or set FIELDGATE_OPCUA_PASSWORD")
	fs.StringVar(&userCert, "user-cert", "", "user certificate `file` (with -auth certificate)")
	fs.StringVar(&userKey, "user-key", "", "user key `file` (with -auth certificate)")
	fs.BoolVar(&opts.IncludeServer, "include-server", false, "also list the server's own nodes (namespace 0)")
	fs.DurationVar(&opts.Timeout, "timeout", 0, "bound on the whole browse (default 60s)")
	fs.BoolVar(&verbose, "v", false, "log the connection steps to standard error")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gateway opcua browse: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if configPath != "" {
		oc, code := opcuaInputFromConfig(configPath, inputName, stderr)
		if code != exitOK {
			return code
		}
		if opts.Endpoint == "" {
			opts.Endpoint = oc.Endpoint
		}
		if opts.Name == "" {
			opts.Name = oc.Name
		}
		opts.Security, opts.Auth = oc.Security, oc.Auth
	} else {
		if fingerprints != "" {
			for _, f := range strings.Split(fingerprints, ",") {
				opts.Security.ServerFingerprints = append(opts.Security.ServerFingerprints, strings.TrimSpace(f))
			}
		}
		opts.Security.StateDir = stateDir
		opts.Auth.Method = method
		opts.Auth.CertFile, opts.Auth.KeyFile = userCert, userKey
		if method == opcua.AuthUsername {
			pw := os.Getenv("FIELDGATE_OPCUA_PASSWORD")
			if passFile != "" {
				b, err := yamlconf.ReadSecretFile(passFile)
				if err != nil {
					fmt.Fprintf(stderr, "gateway opcua browse: -password-file %s: %v\n", passFile, err)
					return exitUsage
				}
				pw = strings.TrimRight(string(b), "\r\n")
			}
			opts.Auth.Password = fieldgate.Secret(pw)
		}
	}
	if opts.Endpoint == "" {
		fmt.Fprintf(stderr, "gateway opcua browse: -endpoint (or -config) is required\n")
		return exitUsage
	}
	logLevel := slog.LevelWarn
	if verbose {
		logLevel = slog.LevelDebug
	}
	opts.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	if err := opcua.Browse(ctx, opts, stdout); err != nil {
		fmt.Fprintf(stderr, "gateway opcua browse: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stderr, "(browsed in %v)\n", time.Since(start).Round(time.Millisecond))
	return exitOK
}

// opcuaTrustCmd is `gateway opcua trust -endpoint URL`: show the server's certificate and endpoints and print
// the config lines that pin it (opcua.Trust).
func opcuaTrustCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gateway opcua trust", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoint := fs.String("endpoint", "", "server `URL`, opc.tcp://host:4840 (required)")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on the request")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *endpoint == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gateway opcua trust: want -endpoint opc.tcp://HOST:PORT and nothing else\n")
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := opcua.Trust(ctx, *endpoint, *timeout, stdout); err != nil {
		fmt.Fprintf(stderr, "gateway opcua trust: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// opcuaInputFromConfig loads a gateway config (with its drop-ins, substitutions and checks) and returns one opcua
// input.
func opcuaInputFromConfig(path, name string, stderr io.Writer) (opcua.Config, int) {
	l, err := loadPath(path, defaultConfDir(path), false)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return opcua.Config{}, exitUsage
	}
	cfg := l.cfg
	var names []string
	for _, oc := range cfg.OPCUA {
		if oc.Name == name || (name == "" && len(cfg.OPCUA) == 1) {
			return oc, exitOK
		}
		names = append(names, oc.Name)
	}
	switch {
	case len(names) == 0:
		fmt.Fprintf(stderr, "gateway opcua browse: %s has no opcua input\n", path)
	case name == "":
		fmt.Fprintf(stderr, "gateway opcua browse: %s has several opcua inputs (%s): choose one with -input\n", path, strings.Join(names, ", "))
	default:
		fmt.Fprintf(stderr, "gateway opcua browse: %s has no opcua input %q (it has %s)\n", path, name, strings.Join(names, ", "))
	}
	return opcua.Config{}, exitUsage
}
