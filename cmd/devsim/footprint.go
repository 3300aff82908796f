package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// runFootprint measures what an idle gateway costs: the time from exec to a 200 from /readyz (buffer open, MQTT
// subscription confirmed), and its memory after it has sat idle with one MQTT input and Kafka connected. The
// native build runs as it is; an arm64 build, if given, runs under qemu-aarch64-static, where only the ratio to
// the native start-up says something (qemu translates every instruction, and says nothing about a Pi's CPU or
// its SD card), and the resident size includes the emulator, so the Go heap is the figure to compare.
func runFootprint(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("devsim footprint", flag.ContinueOnError)
	gateway := fs.String("gateway", "bin/gateway", "the gateway binary for this machine")
	arm64 := fs.String("gateway-arm64", "", "an arm64 gateway binary, run under qemu-aarch64-static (empty: skipped)")
	broker := fs.String("mqtt", "", "URL of the MQTT broker the gateway subscribes to (required)")
	runs := fs.Int("runs", 5, "starts of each binary; the median is printed")
	idle := fs.Duration("idle", 10*time.Second, "how long the gateway sits idle before its memory is read")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *broker == "" || *runs < 1 {
		return errors.New("footprint: -mqtt is required, -runs at least 1")
	}
	cluster, err := kfake.NewCluster(kfake.Ports(freePort()), kfake.SeedTopics(1, "fieldgate.readings"))
	if err != nil {
		return err
	}
	defer cluster.Close()

	type variant struct {
		name string
		argv []string
	}
	variants := []variant{{runtime.GOARCH + ", native", []string{*gateway}}}
	if *arm64 != "" {
		variants = append(variants, variant{"arm64, qemu-user", []string{"qemu-aarch64-static", *arm64}})
	}
	fmt.Printf("%-18s %18s %22s %16s\n", "gateway", "exec to /readyz", fmt.Sprintf("RSS after %s idle", *idle), "Go heap in use")
	var native time.Duration
	for _, v := range variants {
		var rs []footprintResult
		for i := range *runs {
			r, err := footprintRun(ctx, v.argv, *broker, cluster.ListenAddrs()[0], i, *idle)
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			rs = append(rs, r)
		}
		m := footprintMedian(rs)
		ready := fmt.Sprintf("%.0f ms", m.ready.Seconds()*1000)
		if native == 0 {
			native = m.ready
		} else {
			ready = fmt.Sprintf("%s (%.1fx)", ready, m.ready.Seconds()/native.Seconds())
		}
		fmt.Printf("%-18s %18s %18.1f MiB %12.1f MiB\n", v.name, ready, m.rssMB, m.heapMB)
	}
	return nil
}

type footprintResult struct {
	ready  time.Duration // exec to the first 200 from /readyz
	rssMB  float64       // VmRSS after the idle time, MiB
	heapMB float64       // go_memstats_heap_inuse_bytes then, MiB
}

// footprintMedian takes each figure's median on its own.
func footprintMedian(rs []footprintResult) footprintResult {
	med := func(f func(footprintResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return footprintResult{
		ready:  time.Duration(med(func(r footprintResult) float64 { return float64(r.ready) })),
		rssMB:  med(func(r footprintResult) float64 { return r.rssMB }),
		heapMB: med(func(r footprintResult) float64 { return r.heapMB }),
	}
}

// footprintRun starts the gateway (argv: the binary, or an emulator and the binary) with a fresh state folder,
// times it to /readyz, lets it idle, reads its memory and stops it.
func footprintRun(ctx context.Context, argv []string, broker, kafka string, run int, idle time.Duration) (footprintResult, error) {
	dir, err := os.MkdirTemp("", "fieldgate-footprint-")
	if err != nil {
		return footprintResult{}, err
	}
	defer os.RemoveAll(dir)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort())
	cfg := fmt.Sprintf(`gateway_id: footprint-%d-%d
state_dir: %s
log: {level: warn}
http: {listen: "%s"}
kafka: {brokers: ["%s"], topic: fieldgate.readings}
mqtt:
  - name: sensors
    broker: %s
    subscriptions: [{topic: "footprint/{device}/telemetry", qos: 1}]
`, os.Getpid(), run, dir, httpAddr, kafka, broker)
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return footprintResult{}, err
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], "run", "-config", path)...)
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return footprintResult{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	var r footprintResult
	client := &http.Client{Timeout: time.Second}
	for deadline := start.Add(time.Minute); ; time.Sleep(2 * time.Millisecond) {
		if resp, err := client.Get("http://" + httpAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				r.ready = time.Since(start)
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return r, fmt.Errorf("not ready within a minute:\n%s", stderr.String())
		}
	}
	select {
	case <-time.After(idle):
	case <-ctx.Done():
		return r, ctx.Err()
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		return r, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			r.rssMB = kb / 1024
		}
	}
	r.heapMB = scrape(ctx, "http://"+httpAddr+"/metrics")["go_memstats_heap_inuse_bytes"] / (1 << 20)
	return r, nil
}
