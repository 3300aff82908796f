package main

// The last good configurations: every applied configuration is kept in <state_dir>/configs as the files it was
// read from (references such as ${KAFKA_PASSWORD} as written, not their values), so that a gateway whose file is
// invalid at start can start on the newest that still loads.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// snapshot is one applied configuration, one JSON file.
type snapshot struct {
	Hash      string       `json:"hash"`
	AppliedAt time.Time    `json:"applied_at"`
	Files     []sourceFile `json:"files"`
}

func historyDir(stateDir string) string { return filepath.Join(stateDir, "configs") }

// saveSnapshot keeps l as applied at `at` in dir, then deletes all but the newest keep. A configuration equal to
// the newest kept (a restart on the same files) is not written again. The file is written and synced under a
// temporary name, then renamed, so a crash leaves no half-written snapshot.
func saveSnapshot(dir string, keep int, l *loaded, at time.Time) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	names, err := snapshotNames(dir)
	if err != nil {
		return err
	}
	if len(names) > 0 && strings.HasSuffix(names[0], "-"+l.hash[:16]+".json") {
		return nil
	}
	data, err := json.MarshalIndent(snapshot{Hash: l.hash, AppliedAt: at.UTC(), Files: l.files}, "", "  ")
	if err != nil {
		return err
	}
	name := at.UTC().Format("20060102T150405.000000000Z") + "-" + l.hash[:16] + ".json"
	tmp, err := os.CreateTemp(dir, ".snapshot-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	names = append([]string{name}, names...)
	for _, old := range names[min(keep, len(names)):] {
		if err := os.Remove(filepath.Join(dir, old)); err != nil {
			return err
		}
	}
	return nil
}

// snapshotNames lists the snapshots of dir, newest first.
func snapshotNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); e.Type().IsRegular() && strings.HasSuffix(n, ".json") && !strings.HasPrefix(n, ".") {
			names = append(names, n)
		}
	}
	slices.Reverse(names) // the names start with the time applied
	return names, nil
}

// loadLastGood loads the newest snapshot of stateDir that loads now (with today's environment and files: a
// snapshot holds references, not secrets), and returns it with its file. Each one that does not load is skipped
// with the reason in the returned error, should none load.
func loadLastGood(stateDir string) (*loaded, string, time.Time, error) {
	dir := historyDir(stateDir)
	names, err := snapshotNames(dir)
	if err != nil {
		return nil, "", time.Time{}, err
	}
	if len(names) == 0 {
		return nil, "", time.Time{}, fmt.Errorf("no configuration was ever applied with state dir %s (none kept in %s)", stateDir, dir)
	}
	var errs []error
	for _, n := range names {
		p := filepath.Join(dir, n)
		var s snapshot
		data, err := os.ReadFile(p)
		if err == nil {
			err = json.Unmarshal(data, &s)
		}
		if err == nil && len(s.Files) == 0 {
			err = errors.New("no files")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		l, err := load(s.Files, false)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s does not load now: %w", p, err))
			continue
		}
		return l, p, s.AppliedAt, nil
	}
	return nil, "", time.Time{}, errors.Join(errs...)
}

// guessStateDir finds the state dir of a configuration that does not load: the state_dir its files set (read as
// YAML, or, when a file is not even that, from its top-level state_dir line), else the default.
func guessStateDir(files []sourceFile) string {
	for _, f := range files {
		var c struct {
			StateDir string `yaml:"state_dir"`
		}
		if yaml.Unmarshal([]byte(f.Data), &c) != nil {
			if m := stateDirLine.FindStringSubmatch(f.Data); m != nil {
				c.StateDir = strings.Trim(m[1], `"'`)
			}
		}
		if c.StateDir != "" && !strings.Contains(c.StateDir, "${") {
			return c.StateDir
		}
	}
	return defaultStateDir
}

var stateDirLine = regexp.MustCompile(`(?m)^state_dir:[ \t]*("[^"]*"|'[^']*'|[^#\s]+)`)
