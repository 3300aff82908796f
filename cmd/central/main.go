// Command central is fieldgate's central service: a Kafka consumer group that windows the gateways' readings by
// event time and loads raw readings, window aggregates and dead letters into CrateDB or PostgreSQL, with an
// exactly-once effect (see loader.go for how).
//
// Usage:
//
//	central run      -config FILE                 run until SIGINT or SIGTERM
//	central validate -config FILE                 check a configuration
//	central schema   -dialect cratedb|postgres    print the DDL (CREATE TABLE IF NOT EXISTS ...)
//	central version                               print version, commit and Go version (also --version)
//
// Exit codes: 0 clean stop or valid configuration; 1 runtime failure; 2 usage error or invalid configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fieldgate/fieldgate/cratedb"
	"github.com/fieldgate/fieldgate/internal/logging"
	"github.com/fieldgate/fieldgate/internal/webserve"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version string
	commit  string
)

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2

	defaultConfigPath = "/etc/fieldgate/central.yaml"
)

const usage = `central: fieldgate's central service (Kafka → event-time windows → CrateDB/PostgreSQL)

Usage:
  central run      [-config FILE]                 run until SIGINT or SIGTERM
  central validate [-config FILE]                 check a configuration
  central schema   -dialect cratedb|postgres [-shards N] [-schema NAME] [-sizes 1m,1h] [-config FILE]
                                                  print the DDL for a DBA to review and apply
  central version                                 print version, commit and Go version (also: central --version)

FILE defaults to ` + defaultConfigPath + `. Values in it may read ${ENV_VAR} or ${file:PATH}.
Without database.url the service runs in demo mode: it prints each closed window as a line.

Exit codes:
  0  stopped cleanly on SIGINT/SIGTERM, or the configuration is valid
  1  runtime failure (Kafka client or HTTP listener not started, database unreachable at start)
  2  usage error or invalid configuration (nothing was started)
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
	case "run", "validate":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		fs.SetOutput(stderr)
		path := fs.String("config", defaultConfigPath, "configuration `file`")
		if fs.Parse(rest) != nil || fs.NArg() > 0 {
			return exitUsage
		}
		cfg, _, err := loadConfig(*path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
		if cmd == "validate" {
			mode := "database " + string(cfg.Database.Dialect)
			if cfg.Database.URL == "" {
				mode = "demo mode (no database.url): closed windows printed"
			}
			fmt.Fprintf(stdout, "%s: valid. kafka %s topic %s group %s; %s; windows %v\n", *path,
				strings.Join(cfg.Kafka.Brokers, ","), cfg.Kafka.Topic, cfg.Kafka.Group, mode, cfg.Windows.Sizes)
			return exitOK
		}
		log := logging.New(cfg.Log, stderr)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := run(ctx, cfg, log, stdout); err != nil {
			log.Error("central stopped", "err", err)
			return exitFailure
		}
		return exitOK
	case "schema":
		return schemaCmd(rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "central: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

func schemaCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("schema", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dialect := fs.String("dialect", "", "cratedb or postgres (default: the configuration's, else cratedb)")
	shards := fs.Int("shards", 0, "CrateDB shards per partition (default: the configuration's, else 4)")
	schema := fs.String("schema", "", "schema qualifying the table names (default: the configuration's, else none)")
	sizes := fs.String("sizes", "", "window sizes, comma-separated (default: the configuration's, else 1m,1h)")
	path := fs.String("config", "", "take the defaults above from this configuration `file`")
	if fs.Parse(args) != nil || fs.NArg() > 0 {
		return exitUsage
	}
	var cfg Config
	if *path != "" {
		c, _, err := loadConfig(*path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
		cfg = *c
	} else {
		cfg.applyDefaults()
	}
	if *dialect != "" {
		cfg.Database.Dialect = cratedb.Dialect(*dialect)
	}
	if *shards != 0 {
		cfg.Database.Shards = *shards
	}
	if *schema != "" {
		cfg.Database.Schema = *schema
	}
	if *sizes != "" {
		cfg.Windows.Sizes = nil
		for _, s := range strings.Split(*sizes, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil {
				fmt.Fprintf(stderr, "central schema: -sizes: %v\n", err)
				return exitUsage
			}
			cfg.Windows.Sizes = append(cfg.Windows.Sizes, d)
		}
		if err := cfg.Windows.Validate(); err != nil {
			fmt.Fprintf(stderr, "central schema: -sizes: %v\n", err)
			return exitUsage
		}
	}
	ddl, err := cratedb.Schema(cfg.Database.Dialect, cfg.Database.Schema, cfg.Database.Shards, cfg.Windows.Sizes)
	if err != nil {
		fmt.Fprintf(stderr, "central schema: %v\n", err)
		return exitUsage
	}
	fmt.Fprint(stdout, ddl)
	return exitOK
}

func versionString() string {
	v, c := version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && c == "" {
				c = s.Value
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("central %s commit %s %s %s/%s", v, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// testHook, when set by a test, sees the loader of every run.
var testHook func(*loader)

// run runs the service until ctx ends. It returns nil after a clean stop.
func run(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer) error {
	started := time.Now()
	met := newMetrics()
	var (
		db *cratedb.Writer
		st store
	)
	if cfg.Database.URL != "" {
		var err error
		if db, err = cratedb.New(cfg.Database, cfg.Windows.Sizes, log.With("component", "database")); err != nil {
			return err
		}
		defer db.Close(context.Background())
		st = db
		// The database may start after us (a host reboot): wait for it, so that create_schema runs before use.
		for attempt := 0; ; attempt++ {
			err := db.Connect(ctx)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("database not reachable; waiting", "err", err, "attempt", attempt+1)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(min(time.Duration(attempt+1)*time.Second, 10*time.Second)):
			}
		}
	}
	l, err := newLoader(cfg, log, st, stdout, met)
	if err != nil {
		return err
	}
	if testHook != nil {
		testHook(l)
	}
	opts, err := cfg.Kafka.kafkaOpts(log.With("component", "kafka"))
	if err != nil {
		return err
	}
	opts = append(opts, l.clientOpts()...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	l.cl = cl
	var dbStats func() cratedb.Stats
	if db != nil {
		dbStats = db.Stats
	}
	met.addStats(l.win.Stats, dbStats)

	var srv *http.Server
	if cfg.HTTP.Listen != "off" {
		ln, err := webserve.Listen(cfg.HTTP.Listen, cfg.HTTP.TLS)
		if err != nil {
			cl.Close()
			return fmt.Errorf("http listen %s: %w", cfg.HTTP.Listen, err)
		}
		srv = httpServer(met, func(ctx context.Context) error {
			if _, gen := cl.GroupMetadata(); gen < 0 {
				return errors.New("consumer group not joined")
			}
			if db != nil {
				return db.Ping(ctx)
			}
			return nil
		}, func() statusDoc { return met.status(started, l.win.Stats, dbStats) })
		srv.Handler = webserve.Protect(srv.Handler, func() webserve.Auth { return cfg.HTTP.Auth })
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server", "err", err)
			}
		}()
	}
	log.Info("central started", "version", versionString(), "brokers", cfg.Kafka.Brokers, "topic", cfg.Kafka.Topic,
		"group", cfg.Kafka.Group, "database", cfg.Database.Dialect, "demo", db == nil, "windows", cfg.Windows.Sizes, "http", cfg.HTTP.Listen)
	runErr := l.run(ctx)
	cl.Close() // leaves the group: the revocation callback commits what is safe
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	log.Info("central stopped")
	return runErr
}
