package main

// The protocol-specific glue: connection state, metrics and the validate summary of each component. Every
// component is named here explicitly (no registry), so `grep mqtt.` finds all of it.

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/protocols/modbus"
	"github.com/fieldgate/fieldgate/protocols/mqtt"
	"github.com/fieldgate/fieldgate/protocols/opcua"
)

// source is a built input: the protocol's Source, and what the gateway reads of it.
type source struct {
	fieldgate.Source
	stats     func() any  // the protocol's Stats(), for /api/status and /metrics
	connected func() bool // connected to its broker, device or server (an MQTT input: subscribed too)
}

// build constructs the input's source with its protocol's New, the same way for every protocol: the logger
// names the input (input=kind:name) here, for every input.
func (in inputConfig) build(log *slog.Logger) (*source, error) {
	log = log.With("input", in.kind+":"+in.name)
	switch c := in.cfg.(type) {
	case mqtt.Config:
		return newSource(mqtt.New, c, log, mqttConnected)
	case modbus.Config:
		return newSource(modbus.New, c, log, func(s modbus.Stats) bool { return s.Connected })
	case opcua.Config:
		return newSource(opcua.New, c, log, func(s opcua.Stats) bool { return s.Connected })
	}
	panic("unknown input config " + in.kind)
}

// protocolSource is what every protocol package's *Source is.
type protocolSource[S any] interface {
	fieldgate.Source
	Stats() S
}

func newSource[C, S any, P protocolSource[S]](newFn func(C, *slog.Logger) (P, error), cfg C, log *slog.Logger, connected func(S) bool) (*source, error) {
	p, err := newFn(cfg, log)
	if err != nil {
		return nil, err
	}
	return &source{Source: p, stats: func() any { return p.Stats() }, connected: func() bool { return connected(p.Stats()) }}, nil
}

// mqttConnected is what /readyz and /api/status call connected for an MQTT input: subscribed, not only
// connected, since a connection whose subscriptions the broker refused delivers nothing.
func mqttConnected(s mqtt.Stats) bool { return s.Connected && s.Subscribed }

// inputMetrics writes the protocol's own counters of one input.
func inputMetrics(e emitter, stats any, l []string) {
	switch s := stats.(type) {
	case mqtt.Stats:
		e.gauge("mqtt_subscribed", "1 while the broker has confirmed every subscription on the current connection.", b2f(s.Subscribed), l...)
		e.counter("mqtt_connects_total", "Connections to the broker established (first and reconnects).", s.Connects, l...)
		e.counter("mqtt_connection_losses_total", "Connections lost, or dropped on purpose after a failed commit.", s.ConnectionLosses, l...)
		e.counter("mqtt_subscribe_errors_total", "Subscriptions the broker refused or did not confirm.", s.SubscribeErrors, l...)
		e.counter("mqtt_messages_total", "Messages received.", s.Messages, l...)
		e.counter("mqtt_redelivered_total", "Messages received again (DUP flag): sent before but not acknowledged.", s.Redelivered, l...)
		e.counter("mqtt_acked_total", "QoS 1/2 messages acknowledged to the broker after their commit.", s.AckedMessages, l...)
		e.counter("mqtt_flushes_total", "Commits asked for at once because max_inflight messages waited (the broker sends no more until they are acknowledged).", s.Flushes, l...)
		e.counter("mqtt_held_total", "Times the input stopped reading from the broker because max_batch messages waited for their commits.", s.Held, l...)
		e.counter("mqtt_discarded_total", "Queued messages dropped unacknowledged after a failed commit (the broker redelivers them).", s.Discarded, l...)
		e.counter("mqtt_unrouted_total", "Messages that matched no subscription (stored as dead letters).", s.Unrouted, l...)
		e.write("mqtt_ack_latency_seconds_total", "Sum of the times from receipt to acknowledgement; divided by mqtt_ack_latency_count_total, the mean.",
			prometheus.CounterValue, s.AckLatencySeconds, l...)
		e.counter("mqtt_ack_latency_count_total", "Messages whose receipt-to-acknowledgement time is in mqtt_ack_latency_seconds_total.", s.AckLatencyCount, l...)
		for _, sub := range s.Subscriptions {
			sl := append(append([]string(nil), l...), "subscription", sub.Topic)
			e.counter("mqtt_subscription_messages_total", "Messages received per subscription.", sub.Messages, sl...)
			e.counter("mqtt_subscription_readings_total", "Readings committed per subscription.", sub.Readings, sl...)
			e.counter("mqtt_subscription_dead_letters_total", "Dead letters per subscription.", sub.DeadLetters, sl...)
		}
		if sp := s.Sparkplug; sp != nil {
			sparkplugMetrics(e, sp, l)
		}
	case modbus.Stats:
		e.counter("modbus_connects_total", "Connections opened (the first included).", s.Connects, l...)
		e.counter("modbus_connect_failures_total", "Failed connection attempts.", s.ConnectFailures, l...)
		for _, d := range s.Devices {
			dl := append(append([]string(nil), l...), "device", d.Device)
			e.counter("modbus_polls_total", "Group polls that asked the device.", d.Polls, dl...)
			e.counter("modbus_skipped_ticks_total", "Scheduled polls dropped because the previous work ran late.", d.SkippedTicks, dl...)
			e.counter("modbus_held_ticks_total", "Scheduled polls not sent while the device or connection was backed off.", d.HeldTicks, dl...)
			e.counter("modbus_requests_total", "Read requests sent.", d.Requests, dl...)
			e.write("modbus_request_seconds_total", "Summed latency of the read requests; divided by modbus_requests_total, the mean.",
				prometheus.CounterValue, d.RequestSeconds, dl...)
			for kind, v := range map[string]uint64{"timeout": d.Timeouts, "exception": d.Exceptions,
				"connection": d.ConnectionErrors, "protocol": d.ProtocolErrors} {
				e.counter("modbus_errors_total", "Failed requests by kind.", v, append(append([]string(nil), dl...), "kind", kind)...)
			}
			for code, v := range d.ExceptionsByCode {
				e.counter("modbus_exceptions_total", "Modbus exception replies by code.", v, append(append([]string(nil), dl...), "code", strconv.Itoa(int(code)))...)
			}
			e.counter("modbus_overflows_total", "uint64 values that did not fit an int reading.", d.Overflows, dl...)
			e.gauge("modbus_device_responding", "0 while the device is backed off after it stopped answering.", b2f(d.Responding), dl...)
			e.counter("modbus_not_polled_total", "Tag readings reported not polled (status 260): their request was not sent.", d.NotPolled, dl...)
			e.gauge("modbus_silent_ranges", "Request ranges backed off because the device ignores them while it answers others.", float64(d.SilentRanges), dl...)
		}
	case opcua.Stats:
		e.counter("opcua_connects_total", "Sessions established.", s.Connects, l...)
		e.counter("opcua_connect_failures_total", "Failed connection attempts.", s.ConnectFailures, l...)
		e.counter("opcua_reconnects_total", "Sessions established after the first (each one rebuilds every subscription).", s.Reconnects, l...)
		e.counter("opcua_keep_alives_total", "Keep-alive publish responses (the server is alive, no data changed).", s.KeepAlives, l...)
		e.counter("opcua_watchdog_rebuilds_total", "Subscriptions rebuilt because neither data nor a keep-alive came in time.", s.WatchdogRebuilds, l...)
		e.counter("opcua_notifications_total", "Monitored-item values received.", s.Notifications, l...)
		e.counter("opcua_sequence_gaps_total", "Notification messages the server sent but the gateway never received.", s.SequenceGaps, l...)
		e.counter("opcua_reads_total", "Read service calls.", s.Reads, l...)
		e.counter("opcua_item_errors_total", "Nodes the server refused to read or monitor.", s.ItemErrors, l...)
		e.counter("opcua_errors_total", "Failed service calls and lost sessions.", s.Errors, l...)
		e.gauge("opcua_queued", "Readings waiting for the buffer.", float64(s.Queued), l...)
		e.counter("opcua_dropped_total", "Readings dropped because the buffer fell queue_size behind.", s.Dropped, l...)
		for _, gs := range s.Groups {
			gl := append(append([]string(nil), l...), "group", gs.Name)
			e.counter("opcua_group_readings_total", "Readings per node group.", gs.Readings, gl...)
			e.gauge("opcua_group_items", "Nodes monitored or read on the current session.", float64(gs.Items), gl...)
			e.gauge("opcua_group_failed_items", "Nodes the server refused on the current session.", float64(gs.FailedItems), gl...)
			if !gs.LastData.IsZero() {
				e.gauge("opcua_group_last_data_timestamp_seconds", "Unix time of the group's last reading: a gap while disconnected shows here.",
					float64(gs.LastData.UnixNano())/1e9, gl...)
			}
		}
	}
}

// sparkplugMetrics writes the counters of an MQTT input's Sparkplug host, and each edge node's state.
func sparkplugMetrics(e emitter, sp *mqtt.SparkplugStats, l []string) {
	for _, c := range []struct {
		name, help string
		v          uint64
	}{
		{"messages", "Messages on Sparkplug topics.", sp.Messages},
		{"readings", "Readings committed from Sparkplug messages.", sp.Readings},
		{"dead_letters", "Sparkplug messages stored as dead letters.", sp.DeadLetters},
		{"births", "NBIRTH and DBIRTH messages taken.", sp.Births},
		{"refused_births", "Births refused (a metric without name or datatype, a duplicate alias).", sp.RefusedBirths},
		{"deaths", "NDEATH and DDEATH messages that marked metrics stale.", sp.Deaths},
		{"ignored_deaths", "Deaths of no current birth (an NDEATH whose bdSeq is not the NBIRTH's).", sp.IgnoredDeaths},
		{"rebirth_requests", "NCMD Node Control/Rebirth sent.", sp.RebirthRequests},
		{"rebirths_not_sent", "Rebirths wanted but not sent: passive, or one sent to the edge node less than a second ago.", sp.RebirthsNotSent},
		{"sequence_gaps", "Gaps in sequence numbers not filled within reorder_timeout.", sp.SequenceGaps},
		{"reordered", "Messages that arrived late and filled a sequence gap in time.", sp.Reordered},
		{"out_of_sequence", "Messages behind the expected sequence number and in no gap (duplicates).", sp.OutOfSequence},
		{"alias_misses", "DATA messages with an alias or name their birth did not define.", sp.AliasMisses},
		{"without_birth", "DATA or DBIRTH from an edge node or device without a current birth.", sp.WithoutBirth},
		{"transient", "Metrics marked is_transient, not stored.", sp.Transient},
		{"historical", "Metrics marked is_historical, stored at their own time.", sp.Historical},
		{"stale_readings", "Bad (STALE) readings made for deaths and lost connections.", sp.StaleReadings},
	} {
		e.counter("sparkplug_"+c.name+"_total", c.help, c.v, l...)
	}
	e.gauge("sparkplug_state_online", "Primary host: 1 while its STATE birth is published on the current connection.", b2f(sp.StateOnline), l...)
	for _, n := range sp.Nodes {
		nl := append(append([]string(nil), l...), "group", n.Group, "edge_node", n.EdgeNode)
		e.gauge("sparkplug_node_online", "1 while the edge node is born and not dead.", b2f(n.Online), nl...)
		if !n.LastMessage.IsZero() {
			e.gauge("sparkplug_node_last_message_timestamp_seconds", "Unix time of the edge node's last message.",
				float64(n.LastMessage.UnixNano())/1e9, nl...)
		}
	}
}

func kafkaMetrics(e emitter, g *gateway) {
	ks := g.kafkaStats()
	e.counter("kafka_forwarded_total", "Readings Kafka acknowledged (and the buffer then deleted).", ks.Forwarded)
	e.counter("kafka_dead_lettered_total", "Readings Kafka refused for good, moved to the dead letters.", ks.DeadLettered)
	e.counter("kafka_produce_batches_total", "Produce rounds, whatever their outcome.", ks.Batches)
	e.write("kafka_produce_seconds_total", "Time spent in produce rounds; divided by kafka_produce_batches_total, the mean latency.",
		prometheus.CounterValue, ks.ProduceSeconds)
	e.counter("kafka_produce_errors_total", "Produce rounds that stopped on an error, by class: retriable heals by itself, fatal needs a person (both are retried; nothing is lost).",
		ks.ProduceErrors.Retriable, "class", "retriable")
	e.counter("kafka_produce_errors_total", "Produce rounds that stopped on an error, by class: retriable heals by itself, fatal needs a person (both are retried; nothing is lost).",
		ks.ProduceErrors.Fatal, "class", "fatal")
	e.counter("kafka_log_errors_total", "Failures of the buffer while forwarding (scan, ack, reject).", ks.LogErrors)
	e.gauge("kafka_in_flight", "Records handed to the Kafka client and not yet answered.", float64(ks.InFlight))
	e.counter("kafka_client_restarts_total", "Kafka clients replaced because they held records well past produce_timeout.", ks.ClientRestarts)
	e.gauge("kafka_connected", "1 while the last contact with Kafka succeeded.", b2f(ks.Connected))
	if !ks.LastSuccess.IsZero() {
		e.gauge("kafka_last_success_timestamp_seconds", "Unix time Kafka last acknowledged a record.", float64(ks.LastSuccess.UnixNano())/1e9)
	}
}

// describe prints what `run` would start, for `gateway validate`. Secrets are never printed.
func describe(w io.Writer, l *loaded, offline, verbose bool) {
	c := l.cfg
	fmt.Fprintf(w, "configuration ok\n")
	for i, f := range l.files {
		if i == 0 {
			fmt.Fprintf(w, "file        %s\n", f.Path)
		} else {
			fmt.Fprintf(w, "drop-in     %s\n", f.Path)
		}
	}
	if offline {
		fmt.Fprintf(w, "hash        (not computed offline: references are not read)\n")
	} else {
		fmt.Fprintf(w, "hash        %s\n", l.hash)
	}
	fmt.Fprintf(w, "gateway_id  %s\n", c.GatewayID)
	fmt.Fprintf(w, "state_dir   %s\n", c.StateDir)
	fmt.Fprintf(w, "log         %s, %s\n", c.Log.Level, c.Log.Format)
	fmt.Fprintf(w, "http        %s  (/metrics /healthz /readyz /api/status)\n", c.HTTP.Listen)
	fmt.Fprintf(w, "reload      watch %s, keep the last %d configurations in %s\n", onOff(c.reloadWatch()), c.Reload.Keep, historyDir(c.StateDir))
	fmt.Fprintf(w, "buffer      %s  max %s, %s when full\n", c.Buffer.Path, c.Buffer.MaxBytes, c.Buffer.WhenFull)
	fc := c.Kafka
	fmt.Fprintf(w, "kafka       %s  topic %s, compression %s, batch %d, tls %s, sasl %s\n",
		strings.Join(fc.Brokers, ","), fc.Topic, fc.Compression, fc.BatchSize, onOff(fc.TLS.On()), saslDesc(fc.SASL))
	fmt.Fprintf(w, "inputs      %d\n", c.inputCount())
	for _, mc := range c.MQTT {
		session := "persistent session"
		if mc.CleanSession {
			session = "clean session"
		}
		auth := ""
		if mc.Username != "" {
			auth = ", user " + mc.Username
		}
		fmt.Fprintf(w, "  mqtt %s  %s  client_id %s, %s, tls %s%s\n", mc.Name, redactURL(mc.Broker), mc.ClientID, session, onOff(mc.TLS.On() || isTLSURL(mc.Broker)), auth)
		for _, s := range mc.Subscriptions {
			fmt.Fprintf(w, "    subscribe %s  %s\n", s.Topic, subscriptionDesc(s))
		}
		if sp := mc.Sparkplug; sp != nil {
			fmt.Fprintf(w, "    sparkplug %s\n", sparkplugDesc(*sp))
		}
	}
	for _, mc := range c.Modbus {
		devs := make([]string, len(mc.Devices))
		for j, d := range mc.Devices {
			devs[j] = d.Name
		}
		fmt.Fprintf(w, "  modbus %s  %s %s  devices %s\n", mc.Name, mc.Transport, mc.Address, strings.Join(devs, ", "))
		src, err := modbus.New(mc, nil)
		if verbose && err == nil {
			plan := src.Plan()
			fmt.Fprintf(w, "    read plan (%d requests):\n", len(plan))
			var b strings.Builder
			_ = modbus.WritePlan(&b, plan)
			for _, line := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
				if line != "" {
					fmt.Fprintf(w, "      %s\n", line)
				}
			}
		}
	}
	for _, oc := range c.OPCUA {
		policy := oc.Security.Policy
		if policy == "" {
			policy = "strongest offered"
		}
		nodes := 0
		for _, gr := range oc.Groups {
			nodes += len(gr.Nodes)
		}
		fmt.Fprintf(w, "  opcua %s  %s  security %s (%s), auth %s, %d groups, %d nodes\n", oc.Name, oc.Endpoint, oc.Security.Mode, policy, oc.Auth.Method, len(oc.Groups), nodes)
	}
	for _, warn := range c.warnings(offline) {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

// redactURL hides a password written into a URL (tcp://user:pass@host).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "[unparsable URL]"
	}
	return u.Redacted()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func isTLSURL(u string) bool {
	for _, p := range []string{"ssl://", "tls://", "mqtts://", "tcps://"} {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	return false
}

func saslDesc(s fieldgate.SASLConfig) string {
	if s.Mechanism == "" {
		return "off"
	}
	return s.Mechanism + " user " + s.Username
}

func sparkplugDesc(c mqtt.SparkplugConfig) string {
	groups := "every group"
	if len(c.Groups) > 0 {
		groups = "groups " + strings.Join(c.Groups, ",")
	}
	parts := []string{groups}
	if c.Device != "" {
		parts = append(parts, "device "+c.Device)
	}
	if c.Node != "" {
		parts = append(parts, "node "+c.Node)
	}
	if c.HostID != "" {
		parts = append(parts, "primary host "+c.HostID+" (STATE)")
	}
	if c.Passive {
		parts = append(parts, "passive (no rebirth requests)")
	} else {
		parts = append(parts, "rebirth requests")
	}
	if c.ReorderTimeout != 0 {
		parts = append(parts, "reorder_timeout "+c.ReorderTimeout.String())
	}
	return strings.Join(parts, ", ")
}

func subscriptionDesc(s mqtt.Subscription) string {
	qos := byte(mqtt.DefaultQoS)
	if s.QoS != nil {
		qos = *s.QoS
	}
	format := s.Format
	if format == "" {
		format = mqtt.FormatJSON
	}
	parts := []string{fmt.Sprintf("qos %d", qos), "format " + format}
	if s.Device != "" {
		parts = append(parts, "device "+s.Device)
	}
	if s.Metric != "" {
		parts = append(parts, "metric "+s.Metric)
	}
	if format == mqtt.FormatJSON {
		if len(s.Fields) == 0 {
			parts = append(parts, "every leaf")
		} else {
			fs := make([]string, len(s.Fields))
			for i, f := range s.Fields {
				fs[i] = f.Path
				if f.Metric != "" && f.Metric != f.Path {
					fs[i] += "→" + f.Metric
				}
			}
			parts = append(parts, "fields "+strings.Join(fs, ","))
		}
	}
	if s.Samples != "" {
		parts = append(parts, "samples "+s.Samples)
	}
	if s.Timestamp != nil {
		tf := s.Timestamp.Format
		if tf == "" {
			tf = mqtt.TimeUnixMS
		}
		parts = append(parts, "timestamp "+s.Timestamp.Path+" ("+tf+")")
	}
	return strings.Join(parts, ", ")
}

// warnings are valid but unwise settings, logged at start and at each reload, and printed by validate. Online it
// also says when a serial device is missing (a USB adapter unplugged: the input retries until it appears).
func (c *Config) warnings(offline bool) []string {
	var w []string
	if host, _, err := net.SplitHostPort(c.HTTP.Listen); err == nil {
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			w = append(w, fmt.Sprintf("http.listen %s is not a loopback address: /metrics and /api/status are served without authentication to that network", c.HTTP.Listen))
		}
	}
	if c.Kafka.TLS.InsecureSkipVerify {
		w = append(w, "kafka.tls.insecure_skip_verify: the brokers' certificates are not verified")
	}
	if !c.Kafka.TLS.On() && c.Kafka.SASL.Mechanism != "" {
		w = append(w, fmt.Sprintf("kafka.sasl %s without TLS: the exchange is protected, the records are not", c.Kafka.SASL.Mechanism))
	}
	for _, mc := range c.MQTT {
		w = append(w, mc.Warnings()...)
	}
	for _, mc := range c.Modbus {
		if mc.Transport == modbus.TransportRTU && !offline {
			if _, err := os.Stat(mc.Address); err != nil {
				w = append(w, fmt.Sprintf("modbus input %q: serial device %s: %v (the input retries until it is there)", mc.Name, mc.Address, err))
			}
		}
	}
	for _, oc := range c.OPCUA {
		if oc.Security.Mode == opcua.ModeNone {
			w = append(w, fmt.Sprintf("opcua input %q uses security mode None: everything in clear text, any server accepted", oc.Name))
		}
	}
	return w
}
