// Command gateway is fieldgate's edge daemon: it reads MQTT (and Modbus, OPC UA) inputs, commits every reading to
// a durable bbolt buffer, and forwards the buffer to Kafka.
//
// Usage:
//
//	gateway run      -config FILE      run until SIGINT or SIGTERM
//	gateway validate [-v] -config FILE check a configuration, print what would run
//	gateway modbus read -address A ... read Modbus registers once (commissioning; -h for the flags)
//	gateway opcua browse -endpoint U   print an opcua: input for a server's variables (commissioning; -h)
//	gateway version                    print version, commit and Go version (also: gateway --version)
//
// Exit codes:
//
//	0  stopped cleanly on SIGINT/SIGTERM; or `validate` found the configuration valid
//	1  runtime failure: another gateway holds the state dir, the buffer or the HTTP listener could not be opened,
//	   a component failed for good, or shutdown took longer than the stop timeout
//	2  usage error or invalid configuration (nothing was started)
//
// For `modbus read` and `opcua browse`: 0 success, 1 the device or server failed (connection, timeout, Modbus
// exception, untrusted certificate), 2 usage error.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
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
  gateway run      [-config FILE]       run until SIGINT or SIGTERM
  gateway validate [-v] [-config FILE]  check a configuration and print what would run
  gateway modbus read -address HOST:PORT [-unit N -register holding -start ADDR -type float32 ...]
                                        read registers once, to commission a device (see gateway modbus read -h)
  gateway opcua browse -endpoint opc.tcp://HOST:4840 [-fingerprint SHA256 -node ID -depth N ...]
  gateway opcua browse -config FILE [-input NAME]
                                        walk a server's address space, print a ready-to-use opcua: input
  gateway version                       print version, commit and Go version (also: gateway --version)
  gateway help                          print this text

FILE defaults to ` + defaultConfigPath + `. Values in it may read ${ENV_VAR} or ${file:PATH}.

Exit codes:
  0  stopped cleanly on SIGINT/SIGTERM, or the configuration is valid
  1  runtime failure (state dir locked by another gateway, buffer or HTTP listener not opened,
     a component failed for good, shutdown timed out)
  2  usage error or invalid configuration (nothing was started)
For modbus read and opcua browse: 0 success, 1 the device or server failed, 2 usage error.
`

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		fs := newFlagSet("run", stderr)
		path := fs.String("config", defaultConfigPath, "configuration `file`")
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
		return runCmd(*path, stderr)
	case "validate":
		fs := newFlagSet("validate", stderr)
		path := fs.String("config", defaultConfigPath, "configuration `file`")
		verbose := fs.Bool("v", false, "also print each input's plan (the Modbus read plan)")
		if !parseFlags(fs, rest) {
			return exitUsage
		}
		return validateCmd(*path, *verbose, stdout, stderr)
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
