package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// runWatch prints one compact line every interval: what the gateway takes in and forwards, its buffer, the
// records in Kafka, and what the central service wrote.
func runWatch(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("devsim watch", flag.ContinueOnError)
	gateway := fs.String("gateway", "http://127.0.0.1:9100", "the gateway's HTTP address")
	central := fs.String("central", "http://127.0.0.1:9101", "the central service's HTTP address (empty: none)")
	kafka := fs.String("kafka", "127.0.0.1:19092", "Kafka broker")
	topic := fs.String("topic", "fieldgate.readings", "Kafka topic")
	every := fs.Duration("every", 2*time.Second, "interval between lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(*kafka))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var prev map[string]float64
	prevAt := time.Now()
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now := time.Now()
		m := scrape(ctx, *gateway+"/metrics")
		if *central != "" {
			for k, v := range scrape(ctx, *central+"/metrics") {
				m[k] = v
			}
		}
		if kc, err := kafkaRecords(ctx, adm, *topic); err == nil {
			m["kafka_records"] = kc
		}
		rate := func(name string) float64 {
			if prev == nil {
				return 0
			}
			return (m[name] - prev[name]) / now.Sub(prevAt).Seconds()
		}
		fmt.Printf("%s  in %6.0f/s  forwarded %6.0f/s  buffer %5.0f (oldest %4.1fs)  dropped %.0f  dead letters %.0f  kafka %8.0f  central consumed %6.0f/s windows %.0f late %.0f\n",
			now.Format("15:04:05"),
			rate(mGatewayIn), rate(mGatewayForwarded), m[mBufferEntries], m[mBufferOldestAge],
			m[mBufferDropped], m[mGatewayDeadLetters], m["kafka_records"],
			rate(mCentralConsumed), m[mCentralWindows], m[mCentralLate])
		prev, prevAt = m, now
	}
}

// Metric names the live line reads (each summed over its labels).
const (
	mGatewayIn          = "fieldgate_input_readings_total"
	mGatewayForwarded   = "fieldgate_kafka_forwarded_total"
	mBufferEntries      = "fieldgate_buffer_entries"
	mBufferOldestAge    = "fieldgate_buffer_oldest_age_seconds"
	mBufferDropped      = "fieldgate_buffer_dropped_total"
	mGatewayDeadLetters = "fieldgate_buffer_dead_letters"
	mCentralConsumed    = "fieldgate_central_records_consumed_total"
	mCentralWindows     = "fieldgate_central_windows_fired_total"
	mCentralLate        = "fieldgate_central_readings_late_total"
)

// scrape reads a Prometheus text exposition and sums each metric over its labels. Errors yield an empty map:
// the live line shows zeros while a process starts.
func scrape(ctx context.Context, url string) map[string]float64 {
	out := map[string]float64{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return out
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		name := line[:sp]
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		if v, err := strconv.ParseFloat(line[sp+1:], 64); err == nil {
			out[name] += v
		}
	}
	return out
}

func kafkaRecords(ctx context.Context, adm *kadm.Client, topic string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return float64(n), nil
}
