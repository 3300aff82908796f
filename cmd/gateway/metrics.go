package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// collector turns the components' Stats() snapshots into Prometheus metrics at scrape time: the components keep
// plain atomic counters and never import Prometheus. It is an unchecked collector (Describe sends nothing), so a
// metric that a component adds shows up without a registration step.
//
// Metrics (all prefixed fieldgate_):
//
//	build_info{version,commit,go_version,gateway_id}          1
//	input_up{input,type}                                      1 running, 0 failed or stopped
//	input_connected{input,type}                               1 connected to its broker/device/server
//	input_readings_total{input,type}                          readings committed to the buffer
//	input_emits_total{input,type}                             commits (batches) of readings
//	input_emit_errors_total{input,type}                       commits refused by the buffer (input not acknowledged)
//	input_dead_letters_total{input,type}                      undecodable input stored as dead letters
//	input_implausible_source_times_total{input,type}          readings committed at gateway time: source time out of bounds
//	input_last_reading_timestamp_seconds{input,type}          time of the last commit
//	buffer_entries, buffer_bytes, buffer_file_bytes           readings waiting for Kafka, their bytes, the file size
//	buffer_max_bytes                                          the cap
//	buffer_oldest_age_seconds                                 age of the oldest reading not yet in Kafka
//	buffer_appended_total, buffer_acked_total                 readings in; readings Kafka acknowledged
//	buffer_dropped_total{policy}                              readings dropped because the buffer was full
//	buffer_dead_letters, buffer_dead_letter_bytes             dead letters stored, their bytes
//	buffer_dead_letters_stored_total, _dropped_total          dead letters committed; deleted by the caps
//	buffer_commits_total, buffer_commit_seconds_total         group commits and the time they took
//	buffer_append_errors_total, buffer_commit_errors_total    appends and commits that failed (disk full, I/O)
//	buffer_corrupt_files_total                                corrupt buffer files moved aside at start
//	buffer_healthy                                            0 while commits fail (see /readyz)
//	kafka_forwarded_total                                     readings Kafka acknowledged
//	kafka_dead_lettered_total                                 readings Kafka refused for good (now dead letters)
//	kafka_produce_batches_total, kafka_produce_seconds_total  produce rounds and their time (mean latency)
//	kafka_produce_errors_total{class}                         failed rounds: retriable, fatal (both retried)
//	kafka_connected, kafka_in_flight, kafka_last_success_timestamp_seconds, kafka_client_restarts_total,
//	kafka_log_errors_total
//	devices_tracked                                           devices listed in /api/status
//	mqtt_*, modbus_*, opcua_*{input,type,...}                 each protocol's own counters (see inputMetrics)
//	go_*, process_*                                           the Go runtime and the process (RSS, CPU, fds)
type collector struct{ g *gateway }

func (c *collector) Describe(chan<- *prometheus.Desc) {}

// metric writes one sample; labels are name/value pairs.
type emitter struct {
	ch chan<- prometheus.Metric
}

func (e emitter) write(name, help string, typ prometheus.ValueType, v float64, labels ...string) {
	var names, values []string
	for i := 0; i+1 < len(labels); i += 2 {
		names = append(names, labels[i])
		values = append(values, labels[i+1])
	}
	desc := prometheus.NewDesc("fieldgate_"+name, help, names, nil)
	e.ch <- prometheus.MustNewConstMetric(desc, typ, v, values...)
}

func (e emitter) counter(name, help string, v uint64, labels ...string) {
	e.write(name, help, prometheus.CounterValue, float64(v), labels...)
}

func (e emitter) gauge(name, help string, v float64, labels ...string) {
	e.write(name, help, prometheus.GaugeValue, v, labels...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	g, e, now := c.g, emitter{ch}, time.Now()
	e.gauge("build_info", "Version of the running gateway; always 1.", 1,
		"version", g.build.Version, "commit", g.build.Commit, "go_version", g.build.GoVersion, "gateway_id", g.cfg.GatewayID)

	for _, in := range g.inputs {
		l := []string{"input", in.name, "type", in.kind}
		e.gauge("input_up", "1 while the input runs; 0 once it failed for good or stopped.", b2f(in.getState() == "running"), l...)
		if conn, known := in.connected(); known {
			e.gauge("input_connected", "1 while the input is connected to its broker, device or server.", b2f(conn), l...)
		}
		e.counter("input_readings_total", "Readings of the input committed to the buffer.", in.readings.Load(), l...)
		e.counter("input_emits_total", "Commits of readings of the input (each one fsync shared by many readings).", in.batches.Load(), l...)
		e.counter("input_emit_errors_total", "Commits refused by the buffer; the input did not acknowledge upstream.", in.emitErrors.Load(), l...)
		e.counter("input_dead_letters_total", "Input that could not become readings, stored as dead letters.", in.deadLetters.Load(), l...)
		e.counter("input_implausible_source_times_total", "Readings whose source time was outside the input's source_time bound: committed at their gateway time, marked uncertain.",
			in.implausible.Load(), l...)
		e.counter("input_reject_errors_total", "Dead letters the buffer could not store.", in.rejectErrors.Load(), l...)
		if ns := in.lastReading.Load(); ns != 0 {
			e.gauge("input_last_reading_timestamp_seconds", "Unix time of the input's last commit.", float64(ns)/1e9, l...)
		}
		if in.stats != nil {
			inputMetrics(e, in, l)
		}
	}

	bs := g.buf.Stats()
	e.gauge("buffer_entries", "Readings in the buffer, not yet acknowledged by Kafka.", float64(bs.Entries))
	e.gauge("buffer_bytes", "Bytes of the readings in the buffer (what max_bytes caps).", float64(bs.Bytes))
	e.gauge("buffer_file_bytes", "Size of the buffer file.", float64(bs.FileBytes))
	e.gauge("buffer_max_bytes", "The buffer's cap, max_bytes.", float64(maxBytes(g.cfg)))
	e.gauge("buffer_oldest_age_seconds", "Age of the oldest reading not yet acknowledged by Kafka; 0 when empty.", ageSeconds(now, bs.OldestAppended))
	e.counter("buffer_appended_total", "Readings committed to the buffer.", bs.Appended)
	e.counter("buffer_acked_total", "Readings acknowledged by Kafka and deleted from the buffer.", bs.Acked)
	e.counter("buffer_dropped_total", "Readings dropped because the buffer was full, by policy.", bs.DroppedOldest, "policy", "drop_oldest")
	e.counter("buffer_dropped_total", "Readings dropped because the buffer was full, by policy.", bs.DroppedNewest, "policy", "drop_newest")
	e.gauge("buffer_dead_letters", "Dead letters stored in the buffer.", float64(bs.DeadLetters))
	e.gauge("buffer_dead_letter_bytes", "Bytes of the dead letters stored.", float64(bs.DeadLetterBytes))
	e.counter("buffer_dead_letters_stored_total", "Dead letters committed (from inputs and from Kafka refusals).", bs.DeadLettersStored)
	e.counter("buffer_dead_letters_dropped_total", "Oldest dead letters deleted by max_dead_letters or max_dead_letter_bytes.", bs.DeadLettersDropped)
	e.counter("buffer_commit_errors_total", "Group commits that failed.", bs.CommitErrors)
	e.counter("buffer_commits_total", "Group commits (each one fsync).", bs.Commits)
	e.write("buffer_commit_seconds_total", "Time spent in group commits.", prometheus.CounterValue, bs.CommitSeconds)
	e.counter("buffer_append_errors_total", "Commits that failed (disk full, I/O error).", bs.AppendErrors)
	e.counter("buffer_corrupt_files_total", "Corrupt buffer files moved aside at start.", bs.CorruptFilesMovedAside)
	e.gauge("buffer_healthy", "0 while the buffer cannot commit (see /readyz).", b2f(bs.Healthy))

	kafkaMetrics(e, g)

	g.devices.mu.Lock()
	n := len(g.devices.devices)
	g.devices.mu.Unlock()
	e.gauge("devices_tracked", "Devices listed with their last reading time in /api/status.", float64(n))
}
