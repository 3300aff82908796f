// Command devsim is a simulated plant for demos and benchmarks: an embedded MQTT broker with simulated sensors
// and a Sparkplug B edge node, a Modbus TCP PLC, an OPC UA server, and an in-memory Kafka cluster (kfake) for the
// gateway to forward to and the central service to consume from. Everything listens on 127.0.0.1 only.
//
//	devsim run   [flags]   start the plant and Kafka until interrupted
//	devsim watch [flags]   print a live line of what flows through a running gateway and central service
//	devsim footprint [flags]  an idle gateway's start-up time and memory (make bench)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := os.Args[1:]
	cmd := "run"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "run":
		err = runPlant(ctx, args, log)
	case "watch":
		err = runWatch(ctx, args)
	case "bench":
		err = runBench(ctx, args)
	case "footprint":
		err = runFootprint(ctx, args)
	case "baseline-subscriber":
		err = runBaselineSubscriber(ctx, args)
	case "help":
		usage()
	default:
		usage()
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "devsim:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  devsim run   [flags]   start the simulated plant and Kafka until interrupted (devsim run -h for flags)
  devsim watch [flags]   print a live line of a running gateway and central service (devsim watch -h)
  devsim bench [flags]   end-to-end harness: the gateway beside a do-nothing MQTT subscriber (devsim bench -h)
  devsim footprint [flags]  an idle gateway's start-up time and memory, native and arm64 under qemu (-h)
`)
}

// plantConfig is what `devsim run` starts; an empty address leaves that part out.
type plantConfig struct {
	MQTTAddr      string  // embedded MQTT broker
	SensorRate    float64 // messages per second per simulated sensor
	SparkplugRate float64 // DDATA messages per second per device of the Sparkplug edge node
	KafkaAddr     string  // kfake broker
	KafkaDir      string  // kfake data directory; empty keeps Kafka in memory
	Topic         string
	Partitions    int
	ModbusAddr    string // simulated PLC, Modbus TCP
	ModbusRTU     string // path of a symlink to a pseudo-terminal where the PLC answers Modbus RTU
	OPCUAAddr     string // simulated OPC UA server
	StateDir      string
}

func runPlant(ctx context.Context, args []string, log *slog.Logger) error {
	var c plantConfig
	fs := flag.NewFlagSet("devsim run", flag.ContinueOnError)
	fs.StringVar(&c.MQTTAddr, "mqtt", "127.0.0.1:18831", "listen address of the embedded MQTT broker (empty: none)")
	fs.Float64Var(&c.SensorRate, "sensor-rate", 2, "messages per second per simulated MQTT sensor (0: no sensors)")
	fs.Float64Var(&c.SparkplugRate, "sparkplug-rate", 1, "DDATA messages per second per device of the simulated Sparkplug B edge node (0: none)")
	fs.StringVar(&c.KafkaAddr, "kafka", "127.0.0.1:19092", "listen address of the in-memory Kafka broker (empty: none)")
	fs.StringVar(&c.KafkaDir, "kafka-data", "", "directory where the Kafka broker keeps its data across restarts (empty: memory only)")
	fs.StringVar(&c.Topic, "topic", "fieldgate.readings", "Kafka topic to create")
	fs.IntVar(&c.Partitions, "partitions", 6, "partitions of the topic")
	fs.StringVar(&c.ModbusAddr, "modbus", "127.0.0.1:15020", "listen address of the simulated Modbus TCP PLC (empty: none)")
	fs.StringVar(&c.ModbusRTU, "modbus-rtu", "", "path of a symlink to a pseudo-terminal where the PLC answers Modbus RTU (empty: none)")
	fs.StringVar(&c.OPCUAAddr, "opcua", "127.0.0.1:14840", "listen address of the simulated OPC UA server (empty: none)")
	fs.StringVar(&c.StateDir, "state", ".cache/devsim", "directory for the simulators' state (OPC UA certificates)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(c.StateDir, 0o700); err != nil {
		return err
	}
	return runParts(ctx, c, log)
}
