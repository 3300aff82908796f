// Command gateway is fieldgate's edge daemon: it reads MQTT (and Modbus, OPC UA) inputs, commits every reading to
// a durable bbolt buffer, and forwards the buffer to Kafka. It reloads its configuration when the files change or
// on SIGHUP, applying only what changed.
//
// Usage:
//
//	gateway run      [-config FILE] [-confdir DIR] [-strict]   run until SIGINT or SIGTERM; SIGHUP reloads
//	gateway validate [-v] [-offline] [-config FILE] [-confdir DIR]  check a configuration, print what would run
//	gateway schema                     print the JSON Schema of the configuration
//	gateway deadletters list|export|replay [-input NAME] [-since T] [-url U] [-token T]  the running gateway's dead letters
//	gateway hash-password              read a password on standard input, print its bcrypt hash (http.auth.password_bcrypt)
//	gateway modbus read -address A ... read Modbus registers once (commissioning; -h for the flags)
//	gateway opcua browse -endpoint U   print an opcua: input for a server's variables (commissioning; -h)
//	gateway opcua trust -endpoint U    show a server's certificate and endpoints, print the lines to pin it
//	gateway version                    print version, commit and Go version (also: gateway --version)
//
// Exit codes:
//
//	0  stopped cleanly on SIGINT/SIGTERM; or `validate` found the configuration valid
//	1  runtime failure: another gateway holds the state dir, the buffer or the HTTP listener could not be opened,
//	   a component failed for good, or shutdown took longer than the stop timeout
//	2  usage error, or an invalid configuration with no last good one to start on (nothing was started)
//
// For `modbus read`, `opcua browse` and `opcua trust`: 0 success, 1 the device or server failed (connection, timeout, Modbus
// exception, untrusted certificate), 2 usage error.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/fieldgate/fieldgate/configs"
)

// Set at build time: go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc1234". When empty, they come
// from the module's build information.
var (
	version string
	commit  string
)

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2

	defaultConfigPath = "/etc/fieldgate/gateway.yaml"
)

const usage = `gateway: fieldgate's edge daemon (MQTT, Modbus, OPC UA → durable buffer → Kafka)

Usage:
  gateway run      [-config FILE] [-confdir DIR] [-strict]
                                        run until SIGINT or SIGTERM; reload on SIGHUP and when the files change
  gateway validate [-v] [-offline] [-config FILE] [-confdir DIR]
                                        check a configuration and print what would run (and its hash)
  gateway schema                        print the configuration's JSON Schema (for editors and CI)
  gateway deadletters list|export|replay [-input NAME] [-since T] [-url URL] [-token TOKEN]
                                        the running gateway's dead letters: list them (newest first), export
                                        them (NDJSON, payloads in base64), or replay them through the current
                                        mappings (needs http.allow_replay: true); address and token from FILE
  gateway hash-password < FILE          read a password (first line of standard input), print its bcrypt hash
                                        for http.auth.password_bcrypt
  gateway modbus read -address HOST:PORT [-unit N -register holding -start ADDR -type float32 ...]
                                        read registers once, to commission a device (see gateway modbus read -h)
  gateway opcua browse -endpoint opc.tcp://HOST:4840 [-fingerprint SHA256 -node ID -depth N ...]
  gateway opcua browse -config FILE [-input NAME]
                                        walk a server's address space, print a ready-to-use opcua: input
  gateway opcua trust -endpoint opc.tcp://HOST:4840
                                        show the server's certificate (subject, validity, SHA-256) and endpoints,
                                        print the config lines that pin it
  gateway version                       print version, commit and Go version (also: gateway --version)
  gateway help                          print this text

FILE defaults to ` + defaultConfigPath + `, DIR to conf.d beside FILE: its *.yaml files (drop-ins) are read
after FILE in name order. Values may read ${ENV_VAR} or ${file:PATH}. validate -offline checks them for syntax
only and reads no certificate, key or secret file, for a machine other than the gateway.

run starts on the newest last good configuration (kept in <state_dir>/configs) when the files are invalid,
and says so loudly; -strict refuses to start instead.

Exit codes:
  0  stopped cleanly on SIGINT/SIGTERM, or the configuration is valid
  1  runtime failure (state dir locked by another gateway, buffer or HTTP listener not opened,
     a component failed for good, shutdown timed out)
  2  usage error, or an invalid configuration and no last good one (nothing was started)
For modbus read, opcua browse and opcua trust: 0 success, 1 the device or server failed, 2 usage error.
For deadletters: 0 success, 1 the gateway could not be asked or refused, 2 usage error.
`

func main() {
	// SIGHUP is caught before anything else: its default action ends the process, and a service manager sees a
	// clean exit when a reload is asked for while the gateway is still starting.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	sighup = hup
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// sighup receives SIGHUP (main sets it; nil in tests, where a reload is asked for otherwise).
var sighup <-chan os.Signal

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		fs := newFlagSet("run", stderr)
		paths := configFlags(fs)
		strict := fs.Bool("strict", false, "refuse to start on an invalid configuration, rather than start on the last good one")
		cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `file` (for performance reports)")
		if !parseFlags(fs, rest) {
			return exitUsage
		}
		if *cpuProfile != "" {
			stop, err := startCPUProfile(*cpuProfile)
			if err != nil {
				fmt.Fprintln(stderr, "gateway run:", err)
				return exitUsage
			}
			defer stop()
		}
		return runCmd(paths(), *strict, sighup, stderr)
	case "validate":
		fs := newFlagSet("validate", stderr)
		paths := configFlags(fs)
		verbose := fs.Bool("v", false, "also print each input's plan (the Modbus read plan)")
		offline := fs.Bool("offline", false, "check ${…} references for syntax only, and read no certificate, key or secret file: for a machine other than the gateway")
		if !parseFlags(fs, rest) {
			return exitUsage
		}
		return validateCmd(paths(), *offline, *verbose, stdout, stderr)
	case "schema":
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "gateway schema: unexpected argument %q\n", rest[0])
			return exitUsage
		}
		_, _ = stdout.Write(configs.GatewaySchema)
		return exitOK
	case "deadletters":
		return deadLettersCmd(rest, stdout, stderr)
	case "hash-password":
		return hashPasswordCmd(rest, os.Stdin, stdout, stderr)
	case "modbus":
		return modbusCmd(rest, stdout, stderr)
	case "opcua":
		return opcuaCmd(rest, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, versionLine())
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "gateway: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}

// configFlags adds -config and -confdir to fs; the returned func gives their values after parsing.
func configFlags(fs *flag.FlagSet) func() configPaths {
	path := fs.String("config", defaultConfigPath, "configuration `file`")
	confdir := fs.String("confdir", "", "drop-in `directory`: its *.yaml files are read after -config, in name order (default: conf.d beside -config; a missing one has none)")
	return func() configPaths {
		p := configPaths{file: *path, confdir: *confdir}
		if p.confdir == "" {
			p.confdir = defaultConfDir(p.file)
		}
		return p
	}
}

// validateCmd is `gateway validate`: everything `run` and every reload check before they change anything, and a
// summary of what would run. It never prints a secret.
func validateCmd(paths configPaths, offline, verbose bool, stdout, stderr io.Writer) int {
	l, err := loadPath(paths.file, paths.confdir, offline)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return exitUsage
	}
	describe(stdout, l, offline, verbose)
	return exitOK
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("gateway "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage of gateway %s:\n", name)
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\n%s", usage)
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) bool {
	if err := fs.Parse(args); err != nil {
		return false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return false
	}
	return true
}

type buildInfo struct {
	Version, Commit, GoVersion string
}

func getBuildInfo() buildInfo {
	b := buildInfo{Version: version, Commit: commit, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && b.Commit == "" {
				b.Commit = s.Value
			}
			if s.Key == "vcs.modified" && s.Value == "true" && b.Commit != "" && !strings.HasSuffix(b.Commit, "-dirty") && commit == "" {
				b.Commit += "-dirty"
			}
		}
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	return b
}

func versionLine() string {
	b := getBuildInfo()
	return fmt.Sprintf("fieldgate gateway %s (commit %s, %s, %s/%s)", b.Version, b.Commit, b.GoVersion, runtime.GOOS, runtime.GOARCH)
}

// startCPUProfile profiles the process into path until the returned func is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
