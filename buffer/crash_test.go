package buffer

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
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

// crashChildEnv names the buffer file a re-executed test binary appends to in TestKill9Child.
const crashChildEnv = "FIELDGATE_BUFFER_CRASH_CHILD"

const crashWriters = 4

// TestKill9Child is the child of TestKill9: it appends in a loop from several goroutines, prints "ack G V" after
// each Append of device G returned nil (V the last value of the call), and runs a consumer that scans and acks,
// printing "del G V" before each Ack (V the highest value of device G that Ack may delete). It stops by itself
// after 20 s if nobody kills it.
func TestKill9Child(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("only run as the child of TestKill9")
	}
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			dev := fmt.Sprint("dev", g)
			for v, i := 0, 0; ctx.Err() == nil; i++ {
				n := 1 + i%10
				if g == 0 {
					n = 500 // one large writer, so commits are big enough to grow the file
				}
				if err := b.Append(ctx, readings(dev, v, n)); err != nil {
					return
				}
				v += n
				say("ack %d %d", g, v-1)
			}
		}()
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
		for dev, v := range high {
			say("del %s %d", strings.TrimPrefix(dev, "dev"), v)
		}
		_ = b.Ack(last)
	}
	wg.Wait()
	os.Exit(0)
}

// TestKill9 SIGKILLs a child appending and acking under load and checks, on reopen, that every reading whose
// Append returned nil is there, in order, with no gap, and that the file passes bbolt's consistency check.
func TestKill9(t *testing.T) {
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	for round := range rounds {
		t.Run(strconv.Itoa(round), func(t *testing.T) { kill9Round(t) })
	}
}

func kill9Round(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	cmd := testutil.TargetCommand(os.Args[0], "-test.run=^TestKill9Child$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[int]int64{}    // device -> highest value acknowledged
	maybeDel := map[int]int64{} // device -> highest value Ack may have deleted
	lines := 0
	done := make(chan struct{})
	enough := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var g int
			var v int64
			var kind string
			if n, _ := fmt.Sscanf(sc.Text(), "%s %d %d", &kind, &g, &v); n != 3 {
				continue // a line cut by the kill, or test framework output
			}
			switch kind {
			case "ack":
				acked[g] = v
			case "del":
				maybeDel[g] = max(maybeDel[g], v)
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
	time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	_ = cmd.Wait()

	b, err := Open(Config{Path: path}, testLogger(t))
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	if st := b.Stats(); st.CorruptFilesMovedAside != 0 {
		t.Fatalf("file moved aside after kill -9: %+v", st)
	}
	first := map[int]int64{}
	next := map[int]int64{}
	n := 0
	err = b.Scan(1<<30, func(seq uint64, k, v []byte) error {
		r, err := fieldgate.Decode(v)
		if err != nil {
			return err
		}
		g, _ := strconv.Atoi(strings.TrimPrefix(string(k), "dev"))
		val := r.Value.Int()
		if _, ok := first[g]; !ok {
			first[g] = val
		} else if val != next[g] {
			return fmt.Errorf("seq %d: device %d value %d, want %d (order or gap)", seq, g, val, next[g])
		}
		next[g] = val + 1
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Entries != int64(n) {
		t.Fatalf("Stats.Entries %d, scanned %d", st.Entries, n)
	}
	for g := range crashWriters {
		a, ok := acked[g]
		if !ok {
			continue
		}
		del, anyDel := maybeDel[g]
		f, stored := first[g]
		switch {
		case !stored && (!anyDel || del < a):
			t.Errorf("device %d: nothing stored, but %d acknowledged and at most %d deleted", g, a, del)
		case stored && next[g]-1 < a:
			t.Errorf("device %d: stored up to %d, but %d acknowledged", g, next[g]-1, a)
		case stored && anyDel && f > del+1:
			t.Errorf("device %d: stored from %d, but at most %d deleted", g, f, del)
		case stored && !anyDel && f != 0:
			t.Errorf("device %d: stored from %d, but nothing deleted", g, f)
		}
	}
	t.Logf("%d lines from the child; %d readings stored after the kill; acked %v", lines, n, acked)
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
		t.Fatalf("tx.Check after kill -9: %v", err)
	}
}
