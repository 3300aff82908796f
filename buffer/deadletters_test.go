package buffer

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/fieldgate/fieldgate"
)

// letter i: source a or b alternately, payload "i", time t0+i s.
func storeLetters(t testing.TB, b *Buffer, n int) {
	t.Helper()
	var ds []fieldgate.DeadLetter
	for i := range n {
		src := "mqtt:a"
		if i%2 == 1 {
			src = "mqtt:b"
		}
		ds = append(ds, fieldgate.DeadLetter{Time: t0.Add(time.Duration(i) * time.Second), Source: src,
			Origin: "plant/" + strconv.Itoa(i), Reason: "bad", Payload: []byte(strconv.Itoa(i))})
	}
	c, err := b.Queue(nil, ds)
	if err != nil {
		t.Fatal(err)
	}
	b.Flush()
	if err := c.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// deadLetters is the newest max dead letters.
func deadLetters(b *Buffer, max int) ([]fieldgate.DeadLetter, error) {
	ls, _, err := b.ListDeadLetters(DeadLetterFilter{Limit: max})
	var out []fieldgate.DeadLetter
	for _, l := range ls {
		out = append(out, l.DeadLetter)
	}
	return out, err
}

func payloads(ls []StoredDeadLetter) []string {
	var out []string
	for _, l := range ls {
		out = append(out, string(l.Payload))
	}
	return out
}

func TestListDeadLettersPagesNewestFirst(t *testing.T) {
	b := openT(t, Config{})
	storeLetters(t, b, 10)

	var got []string
	f := DeadLetterFilter{Source: "mqtt:a", Limit: 2}
	for page := 0; ; page++ {
		ls, next, err := b.ListDeadLetters(f)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, payloads(ls)...)
		if next == 0 {
			break
		}
		if page > 5 {
			t.Fatal("paging does not end")
		}
		f.Before = next
	}
	if fmt.Sprint(got) != "[8 6 4 2 0]" {
		t.Fatalf("source a, pages of 2: %v", got)
	}

	ls, next, err := b.ListDeadLetters(DeadLetterFilter{Since: t0.Add(7 * time.Second)})
	if err != nil || next != 0 || fmt.Sprint(payloads(ls)) != "[9 8 7]" {
		t.Fatalf("since 7s: %v next %d err %v", payloads(ls), next, err)
	}
	if ls[0].ID <= ls[1].ID || ls[0].Origin != "plant/9" || ls[0].Source != "mqtt:b" {
		t.Fatalf("newest: %+v", ls[0])
	}
	// A cursor beyond the newest lists from the newest.
	if ls, _, _ := b.ListDeadLetters(DeadLetterFilter{Before: 1 << 40, Limit: 1}); fmt.Sprint(payloads(ls)) != "[9]" {
		t.Fatalf("before beyond newest: %v", payloads(ls))
	}
}

// A replay's resolution commits the readings and deletes the letters in one transaction, rewrites the reason of
// the letters that still fail, and a second replay of the same letters changes nothing.
func TestResolveExactlyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	b := openT(t, Config{Path: path})
	storeLetters(t, b, 4)
	ls, _, err := b.ListDeadLetters(DeadLetterFilter{})
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(b *Buffer) Resolved {
		t.Helper()
		var rs []Resolution
		for _, l := range ls {
			i, _ := strconv.Atoi(string(l.Payload))
			if i%2 == 0 {
				rs = append(rs, Resolution{ID: l.ID, Readings: readings("dev", i*10, 2)})
			} else {
				rs = append(rs, Resolution{ID: l.ID, Reason: "still bad " + strconv.Itoa(i)})
			}
		}
		res, err := b.Resolve(context.Background(), rs)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := resolve(b); res != (Resolved{Replayed: 2, Readings: 4, StillFailing: 2}) {
		t.Fatalf("first replay: %+v", res)
	}
	check := func(b *Buffer) {
		t.Helper()
		checkEntries(t, scanAll(t, b), []fieldgate.Reading{reading("dev", 20), reading("dev", 21), reading("dev", 0), reading("dev", 1)})
		left, _, _ := b.ListDeadLetters(DeadLetterFilter{})
		if len(left) != 2 || left[0].Reason != "still bad 3" || left[1].Reason != "still bad 1" || string(left[0].Payload) != "3" {
			t.Fatalf("letters left: %+v", left)
		}
		if st := b.Stats(); st.Entries != 4 || st.DeadLetters != 2 {
			t.Fatalf("stats: %d readings, %d dead letters", st.Entries, st.DeadLetters)
		}
	}
	check(b)
	// The same replay again: the replayed letters are gone, so their readings are not added twice.
	if res := resolve(b); res != (Resolved{StillFailing: 2, Gone: 2}) {
		t.Fatalf("second replay: %+v", res)
	}
	check(b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openT(t, Config{Path: path})
	check(b)

	// An invalid reading keeps its letter, with the buffer's reason.
	if res, err := b.Resolve(context.Background(), []Resolution{{ID: ls[0].ID, Readings: []fieldgate.Reading{{Device: "", Metric: "m"}}}}); err != nil || res.StillFailing != 1 {
		t.Fatalf("invalid reading: %+v %v", res, err)
	}
}

// The child of TestResolveKill9: it stores resolveLetters dead letters (payload i), then replays them a few at a
// time, each as the reading ("dev", i), printing "ok I" for every letter of a Resolve that returned nil.
const resolveChildEnv = "FIELDGATE_BUFFER_RESOLVE_CHILD"

const resolveLetterCount = 400

func TestResolveKill9Child(t *testing.T) {
	path := os.Getenv(resolveChildEnv)
	if path == "" {
		t.Skip("only run as the child of TestResolveKill9")
	}
	b, err := Open(Config{Path: path, CommitInterval: time.Millisecond}, nil)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	storeLetters(t, b, resolveLetterCount)
	ls, _, err := b.ListDeadLetters(DeadLetterFilter{})
	if err != nil {
		os.Exit(2)
	}
	fmt.Println("stored")
	for len(ls) > 0 {
		n := min(len(ls), 1+rand.IntN(5))
		var rs []Resolution
		for _, l := range ls[:n] {
			i, _ := strconv.Atoi(string(l.Payload))
			rs = append(rs, Resolution{ID: l.ID, Readings: []fieldgate.Reading{reading("dev", i)}})
		}
		if _, err := b.Resolve(context.Background(), rs); err != nil {
			os.Exit(2)
		}
		for _, l := range ls[:n] {
			_, _ = os.Stdout.WriteString("ok " + string(l.Payload) + "\n")
		}
		ls = ls[n:]
	}
	os.Exit(0)
}

// TestResolveKill9 kills a process in the middle of replaying dead letters and checks, on reopen, that every
// letter is either still stored or became its reading, never both and never neither, and that every replay
// that returned is committed.
func TestResolveKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	cmd, out := startChild(t, "TestResolveKill9Child", resolveChildEnv+"="+path)
	killAt := 20 + rand.IntN(resolveLetterCount/2)
	done := make(chan map[int]bool)
	go func() {
		oks := map[int]bool{}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var i int
			if n, _ := fmt.Sscanf(sc.Text(), "ok %d", &i); n == 1 {
				oks[i] = true
				if len(oks) == killAt {
					_ = cmd.Process.Signal(syscall.SIGKILL)
				}
			}
		}
		done <- oks
	}()
	var oks map[int]bool
	select {
	case oks = <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("child did not get far enough")
	}
	_ = cmd.Wait()
	if len(oks) < killAt {
		t.Fatalf("child stopped after %d replays", len(oks))
	}

	b := openT(t, Config{Path: path})
	count := map[int]int{}
	for _, e := range scanAll(t, b) {
		r, err := fieldgate.Decode(e.value)
		if err != nil {
			t.Fatal(err)
		}
		count[int(r.Value.Int())]++
	}
	ls, _, err := b.ListDeadLetters(DeadLetterFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		i, _ := strconv.Atoi(string(l.Payload))
		count[i]++
		if oks[i] {
			t.Errorf("letter %d was replayed (Resolve returned) but is still stored", i)
		}
	}
	for i := range resolveLetterCount {
		if count[i] != 1 {
			t.Errorf("letter %d: stored %d times as a letter or a reading, want once", i, count[i])
		}
	}
	t.Logf("killed after %d of %d replays; %d letters left", len(oks), resolveLetterCount, len(ls))
}
