package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"
)

// runParts starts every configured part of the plant and blocks until ctx ends or one part fails.
func runParts(ctx context.Context, c plantConfig, log *slog.Logger) error {
	g, ctx := errgroup.WithContext(ctx)
	if c.KafkaAddr != "" {
		g.Go(func() error { return runKafka(ctx, c, log.With("part", "kafka")) })
	}
	if c.MQTTAddr != "" {
		ready := make(chan struct{})
		g.Go(func() error { return runBroker(ctx, c.MQTTAddr, ready, log.With("part", "mqtt-broker")) })
		if c.SensorRate > 0 {
			g.Go(func() error {
				select {
				case <-ready:
				case <-ctx.Done():
					return nil
				}
				return runSensors(ctx, "tcp://"+c.MQTTAddr, c.SensorRate, log.With("part", "mqtt-sensors"))
			})
		}
		if c.SparkplugRate > 0 {
			g.Go(func() error {
				select {
				case <-ready:
				case <-ctx.Done():
					return nil
				}
				return runSparkplugNode(ctx, "tcp://"+c.MQTTAddr, c.SparkplugRate, log.With("part", "sparkplug-edge"))
			})
		}
	}
	if c.ModbusAddr != "" {
		g.Go(func() error { return runModbusPLC(ctx, c.ModbusAddr, log.With("part", "modbus-plc")) })
	}
	if c.ModbusRTU != "" {
		g.Go(func() error { return runModbusPLCRTU(ctx, c.ModbusRTU, log.With("part", "modbus-plc-rtu")) })
	}
	if c.OPCUAAddr != "" {
		g.Go(func() error { return runOPCUAServer(ctx, c.OPCUAAddr, c.StateDir, log.With("part", "opcua-server")) })
	}
	return g.Wait()
}

// runBroker serves an MQTT broker on addr, closing ready once it listens, until ctx ends.
func runBroker(ctx context.Context, addr string, ready chan<- struct{}, log *slog.Logger) error {
	quiet := slog.New(slog.NewTextHandler(logWriter{log}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := mochi.New(&mochi.Options{Logger: quiet, InlineClient: true})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return err
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})); err != nil {
		return fmt.Errorf("mqtt broker on %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		return fmt.Errorf("mqtt broker on %s: %w", addr, err)
	}
	log.Info("MQTT broker listening", "addr", addr)
	close(ready)
	<-ctx.Done()
	return srv.Close()
}

// runKafka serves an in-memory Kafka cluster with the readings topic until ctx ends.
func runKafka(ctx context.Context, c plantConfig, log *slog.Logger) error {
	port, err := portOf(c.KafkaAddr)
	if err != nil {
		return fmt.Errorf("kafka address %q: %w", c.KafkaAddr, err)
	}
	opts := []kfake.Opt{
		kfake.Ports(port),
		kfake.SeedTopics(int32(c.Partitions), c.Topic),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(c.Partitions),
		kfake.GroupMinSessionTimeout(time.Second),
	}
	if c.KafkaDir != "" {
		opts = append(opts, kfake.DataDir(c.KafkaDir))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("kafka on %s: %w", c.KafkaAddr, err)
	}
	log.Info("Kafka (kfake) listening", "addr", cluster.ListenAddrs()[0], "topic", c.Topic, "partitions", c.Partitions)
	<-ctx.Done()
	cluster.Close()
	return nil
}
