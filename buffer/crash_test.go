package buffer

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/internal/testutil"
	bolt "go.etcd.io/bbolt"
)

// The crash child's environment: the buffer file it appends to, and the first value its writers write.
const (
	crashChildEnv = "FIELDGATE_BUFFER_CRASH_CHILD"
	crashBaseEnv  = "FIELDGATE_BUFFER_CRASH_BASE"
)

const crashWriters = 4

// TestKill9Child is the child of TestKill9 and TestPowerLoss: it appends in a loop from several goroutines, as
// the inputs do (writer 0 commits at once, 500 readings a call, as a source that flushes; the others queue 1 to
// 10 readings and wait for the commit interval), and prints "ack G V" after the commit of device G's readings up
// to value V returned nil. A consumer scans and acknowledges, as the forwarder does, printing "del G V T" before
// each Ack (V the highest value of device G that Ack may delete, T the time in Unix nanoseconds). It stops by
// itself after 20 s if nobody kills it.
func TestKill9Child(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("only run as the child of TestKill9 and TestPowerLoss")
	}
	base, _ := strconv.Atoi(os.Getenv(crashBaseEnv))
	b, err := Open(Config{Path: path}, nil)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	say := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = os.Stdout.WriteString(fmt.Sprintf(format, a...) + "\n") // one write(2) per line, unbuffered
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for g := range crashWriters {
		wg.Go(func() {
			dev := fmt.Sprint("dev", g)
			for v, i := base, 0; ctx.Err() == nil; i++ {
				n := 1 + i%10
				var err error
				if g == 0 {
					n = 500 // one large writer, so commits are big enough to grow the file
					err = b.Append(ctx, readings(dev, v, n))
				} else {
					err = fieldgate.Store(ctx, b, readings(dev, v, n))
				}
				if err != nil {
					return
				}
				v += n
				say("ack %d %d", g, v-1)
			}
		})
	}
	// The consumer: lags behind, so the file both grows and drains.
	for ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
		high := map[string]int64{}
		var last uint64
		_ = b.Scan(2000, func(seq uint64, k, v []byte) error {
			r, err := fieldgate.Decode(v)
			if err != nil {
				return err
			}
			high[string(k)] = r.Value.Int()
			last = seq
			return nil
		})
		if last == 0 {
			continue
		}
		now := time.Now().UnixNano()
		for dev, v := range high {
			say("del %s %d %d", strings.TrimPrefix(dev, "dev"), v, now)
		}
		_ = b.Ack(last)
	}
	wg.Wait()
	os.Exit(0)
}

// TestKill9 SIGKILLs a child appending and acking under load and checks, on reopen, that every reading whose
// commit returned nil is there, in order, with no gap, that the file passes bbolt's consistency check, and that
// the readings the child had acknowledged but that are back (their deletion was not committed) are within the
// documented bound.
func TestKill9(t *testing.T) {
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	for round := range rounds {
		t.Run(strconv.Itoa(round), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "buffer.db")
			crashRound(t, path, path, 0, nil)
		})
	}
}

// startChild runs this test binary again, as the test named test, with env added to the environment (through the
// emulator under FIELDGATE_TEST_EMULATOR); out is its standard output, its standard error is the test's.
func startChild(t *testing.T, test string, env ...string) (cmd *exec.Cmd, out io.ReadCloser) {
	cmd = testutil.TargetCommand(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// crashRound runs the child on childPath with values from base on, kills it at a random point, calls powerCut if
// set (a power cut: it returns what turns the power on again, called at the end), and checks the file at path
// (the same file, as it survived). The readings are acknowledged away after the check, so that the next round
// starts from an empty but used file.
func crashRound(t *testing.T, childPath, path string, base int, powerCut func() (powerOn func())) {
	cmd, out := startChild(t, "TestKill9Child", crashChildEnv+"="+childPath, crashBaseEnv+"="+strconv.Itoa(base))
	acked := map[int]int64{} // device -> highest value acknowledged
	type del struct{ v, at int64 }
	dels := map[int][]del{} // device -> the values Ack may have deleted, and when, in order
	lines := 0
	done := make(chan struct{})
	enough := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var g int
			var v, at int64
			var kind string
			n, _ := fmt.Sscanf(sc.Text(), "%s %d %d %d", &kind, &g, &v, &at)
			switch {
			case n == 3 && kind == "ack":
				acked[g] = v
			case n == 4 && kind == "del":
				dels[g] = append(dels[g], del{v, at})
			default:
				continue // a line cut by the kill, or test framework output
			}
			if lines++; lines == 500 {
				close(enough)
			}
		}
	}()
	select {
	case <-enough:
	case <-done:
		t.Fatal("child exited early")
	case <-time.After(5 * time.Second):
	}
	time.Sleep(time.Duration(rand.IntN(1000)) * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	<-done
	_ = cmd.Wait()
	if powerCut != nil {
		defer powerCut()()
	}

	b, err := Open(Config{Path: path}, testLogger(t))
	if err != nil {
		t.Fatalf("reopen after the crash: %v", err)
	}
	if st := b.Stats(); st.CorruptFilesMovedAside != 0 {
		t.Fatalf("file moved aside after the crash: %+v", st)
	}
	first := map[int]int64{}
	next := map[int]int64{}
	var stored []int64 // per reading of this round, its value and device: device*1e12 + value
	n := 0
	var last uint64
	err = b.Scan(1<<30, func(seq uint64, k, v []byte) error {
		last = seq
		r, err := fieldgate.Decode(v)
		if err != nil {
			return err
		}
		g, _ := strconv.Atoi(strings.TrimPrefix(string(k), "dev"))
		val := r.Value.Int()
		if val < int64(base) {
			return nil // an earlier round's
		}
		if _, ok := first[g]; !ok {
			first[g] = val
		} else if val != next[g] {
			return fmt.Errorf("seq %d: device %d value %d, want %d (order or gap)", seq, g, val, next[g])
		}
		next[g] = val + 1
		stored = append(stored, int64(g)*1e12+val)
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for g := range crashWriters {
		a, ok := acked[g]
		if !ok {
			continue
		}
		var maxDel int64 = -1
		for _, d := range dels[g] {
			maxDel = max(maxDel, d.v)
		}
		f, has := first[g]
		switch {
		case !has && maxDel < a:
			t.Errorf("device %d: nothing stored, but %d acknowledged and at most %d deleted", g, a, maxDel)
		case has && next[g]-1 < a:
			t.Errorf("device %d: stored up to %d, but %d acknowledged", g, next[g]-1, a)
		case has && f > maxDel+1 && (maxDel >= 0 || f != int64(base)):
			t.Errorf("device %d: stored from %d, but at most %d deleted", g, f, maxDel)
		}
	}

	// Duplicates: readings acknowledged to the child's consumer whose deletion was not committed. Each must have
	// been acknowledged within the ack delay (1 s at the default commit interval) before the cut, plus the
	// commit it waited for and the child's scheduling (0.5 s).
	bound := Config{CommitInterval: DefaultCommitInterval}.ackDelay() + 500*time.Millisecond
	dups, oldest := 0, time.Duration(0)
	for _, sv := range stored {
		g, v := int(sv/1e12), sv%1e12
		i := slices.IndexFunc(dels[g], func(d del) bool { return d.v >= v })
		if i < 0 {
			continue // never acknowledged: not a duplicate
		}
		dups++
		age := cut.Sub(time.Unix(0, dels[g][i].at))
		oldest = max(oldest, age)
		if age > bound {
			t.Errorf("device %d value %d is back after the crash, but was acknowledged %s before it (bound %s)", g, v, age, bound)
		}
	}
	t.Logf("%d lines from the child; %d readings of this round stored after the crash, %d of them acknowledged before it (duplicates; the oldest acknowledged %s before the cut); acked %v",
		lines, n, dups, oldest.Round(time.Millisecond), acked)

	// Acknowledge everything, as the forwarder would, so the next round starts from an empty but used file.
	if last > 0 {
		if err := b.Ack(last); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("tx.Check after the crash: %v", err)
	}
}
