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
//	config_info{hash}                                         1: the SHA-256 of the effective configuration running
//	config_applied_timestamp_seconds                          when it was applied
//	config_reloads_total{result}                              reloads: applied, unchanged, refused, failed
//	config_last_reload_successful                             0 after a refused or failed reload, until one succeeds
//	config_fallback                                           1 while running on a last good configuration (files invalid at start)
//	input_up{input,type}                                      1 running, 0 failed or stopped
//	input_connected{input,type}                               1 connected to its broker/device/server
//	input_readings_total{input,type}                          readings committed to the buffer
//	input_emits_total{input,type}                             buffer commits that carried readings of the input
//	input_emit_errors_total{input,type}                       queued work refused or whose commit failed (not acknowledged)
//	input_dead_letters_total{input,type}                      undecodable input stored as dead letters
//	dead_letters_total{input,reason}                          the same by class: decode, unrouted, too_large, invalid, sparkplug, other
//	input_implausible_source_times_total{input,type}          readings committed at gateway time: source time out of bounds
//	input_last_reading_timestamp_seconds{input,type}          time of the last reading
//	buffer_entries, buffer_bytes, buffer_file_bytes           readings waiting for Kafka, their bytes, the file size
//	buffer_max_bytes                                          the cap
//	buffer_oldest_age_seconds                                 age of the oldest reading not yet in Kafka
//	buffer_appended_total, buffer_acked_total                 readings in; readings Kafka acknowledged
//	buffer_dropped_total{policy}                              readings dropped because the buffer was full
//	buffer_dead_letters, buffer_dead_letter_bytes             dead letters stored, their bytes
//	buffer_dead_letters_stored_total, _dropped_total          dead letters committed; deleted by the caps
//	buffer_commits_total, buffer_commit_seconds_total         group commits and the time they took
//	buffer_flushes_total                                      commits started before commit_interval (a source asked)
//	buffer_fsyncs_total                                       fdatasync calls of the commits
//	buffer_disk_written_bytes_total                           bytes the process wrote to storage (/proc/self/io)
//	buffer_append_errors_total, buffer_commit_errors_total    readings and commits that failed (disk full, I/O)
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
	rs := g.running.Load()
	cfg := rs.loaded.cfg
	e.gauge("build_info", "Version of the running gateway; always 1.", 1,
		"version", g.build.Version, "commit", g.build.Commit, "go_version", g.build.GoVersion, "gateway_id", cfg.GatewayID)
	configMetrics(e, g, rs)

	for _, in := range g.inputsSnapshot() {
		l := []string{"input", in.name, "type", in.kind}
		e.gauge("input_up", "1 while the input runs; 0 once it failed for good or stopped.", b2f(in.getState() == "running"), l...)
		e.gauge("input_connected", "1 while the input is connected to its broker, device or server.", b2f(in.connected()), l...)
		in.settle()
		e.counter("input_readings_total", "Readings of the input committed to the buffer.", in.readings.Load(), l...)
		e.counter("input_emits_total", "Buffer commits that carried readings of the input (each one shared by every input).", in.batches.Load(), l...)
		e.counter("input_emit_errors_total", "Readings or dead letters of the input the buffer refused or failed to commit; the input did not acknowledge them upstream.", in.emitErrors.Load(), l...)
		e.counter("input_dead_letters_total", "Input that could not become readings, stored as dead letters.", in.deadLetters.Load(), l...)
		for i, class := range deadLetterClasses {
			e.counter("dead_letters_total", "Dead letters committed, by input and class of reason (decode, unrouted, too_large, invalid, sparkplug, other).",
				in.deadClasses[i].Load(), "input", in.name, "reason", class)
		}
		e.counter("input_implausible_source_times_total", "Readings whose source time was outside the input's source_time bound: committed at their gateway time, marked uncertain.",
			in.implausible.Load(), l...)
		if ns := in.lastReading.Load(); ns != 0 {
			e.gauge("input_last_reading_timestamp_seconds", "Unix time of the input's last reading.", float64(ns)/1e9, l...)
		}
		if st := in.stats(); st != nil {
			inputMetrics(e, st, l)
		}
	}

	bs := g.buf.Stats()
	e.gauge("buffer_entries", "Readings in the buffer, not yet acknowledged by Kafka.", float64(bs.Entries))
	e.gauge("buffer_bytes", "Bytes of the readings in the buffer (what max_bytes caps).", float64(bs.Bytes))
	e.gauge("buffer_file_bytes", "Size of the buffer file.", float64(bs.FileBytes))
	e.gauge("buffer_max_bytes", "The buffer's cap, max_bytes.", float64(cfg.Buffer.MaxBytes))
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
	e.counter("buffer_commits_total", "Group commits: one bbolt transaction each, shared by every input.", bs.Commits)
	e.write("buffer_commit_seconds_total", "Time spent in group commits.", prometheus.CounterValue, bs.CommitSeconds)
	e.counter("buffer_flushes_total", "Commits started before commit_interval because a source could not go on without them.", bs.Flushes)
	e.counter("buffer_fsyncs_total", "fdatasync calls of the commits (two per commit, one more when the file grows).", bs.Fsyncs)
	e.write("buffer_disk_written_bytes_total", "Bytes the gateway process made the kernel write to storage (/proc/self/io write_bytes): what the flash sees, before the file system's own journal.",
		prometheus.CounterValue, float64(bs.DiskWrittenBytes))
	e.counter("buffer_append_errors_total", "Readings whose commit failed (disk full, I/O error).", bs.AppendErrors)
	e.counter("buffer_corrupt_files_total", "Corrupt buffer files moved aside at start.", bs.CorruptFilesMovedAside)
	e.gauge("buffer_healthy", "0 while the buffer cannot commit (see /readyz).", b2f(bs.Healthy))

	kafkaMetrics(e, g)

	g.devices.mu.Lock()
	n := len(g.devices.devices)
	g.devices.mu.Unlock()
	e.gauge("devices_tracked", "Devices listed with their last reading time in /api/status.", float64(n))
}

func configMetrics(e emitter, g *gateway, rs *runState) {
	e.gauge("config_info", "The SHA-256 of the effective configuration running (also in /api/status, the log and the fieldgate-config header of every record); always 1.",
		1, "hash", rs.loaded.hash)
	e.gauge("config_applied_timestamp_seconds", "Unix time the running configuration was applied.", float64(rs.appliedAt.UnixNano())/1e9)
	for result, n := range map[string]uint64{resultApplied: g.reloads.applied.Load(), resultUnchanged: g.reloads.unchanged.Load(),
		resultRefused: g.reloads.refused.Load(), resultFailed: g.reloads.failed.Load()} {
		e.counter("config_reloads_total", "Configuration reloads by result: applied, unchanged (same hash), refused (invalid, or needs a restart), failed (files unreadable, HTTP address busy). Refused and failed change nothing.",
			n, "result", result)
	}
	ok := true
	if last := g.lastLoad.Load(); last != nil {
		ok = last.Result == resultApplied || last.Result == resultUnchanged
	}
	e.gauge("config_last_reload_successful", "0 after a reload was refused or failed (the running configuration stayed), 1 once one succeeds.", b2f(ok))
	e.gauge("config_fallback", "1 while the gateway runs on a last good configuration because its files were invalid at start (see /readyz).", b2f(rs.fallback != ""))
}
