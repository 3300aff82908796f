package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fieldgate/fieldgate"
	"github.com/fieldgate/fieldgate/protocols/modbus"
)

// modbusCmd is `gateway modbus read ...`: one read of a device's registers, for commissioning. The flags become a
// modbus.Config and a modbus.ReadSpec for modbus.ReadOnce.
func modbusCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "read" {
		fmt.Fprintf(stderr, "gateway modbus: want \"gateway modbus read -address HOST:PORT ...\" (-h for the flags)\n")
		return exitUsage
	}
	conn, spec, err := parseModbusRead(args[1:], stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "gateway modbus read: %v\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	res, err := modbus.ReadOnce(ctx, conn, spec)
	if err != nil {
		fmt.Fprintf(stderr, "gateway modbus read: %v\n", err)
		if errors.Is(err, modbus.ErrUsage) {
			return exitUsage
		}
		return exitFailure
	}
	if err := modbus.WriteReadResult(stdout, res); err != nil {
		return exitFailure
	}
	fmt.Fprintf(stdout, "(read in %v)\n", time.Since(start).Round(time.Millisecond))
	return exitOK
}

// parseModbusRead turns the flags of `gateway modbus read` into the connection and the read; flag.ErrHelp for -h.
func parseModbusRead(args []string, stderr io.Writer) (modbus.Config, modbus.ReadSpec, error) {
	fs := flag.NewFlagSet("gateway modbus read", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		conn              modbus.Config
		spec              modbus.ReadSpec
		transport, parity string
		scale, offset     float64
		caFile, cert, key string
	)
	fs.StringVar(&transport, "transport", "tcp", "tcp, tcp+tls, rtu or rtu_over_tcp")
	fs.StringVar(&conn.Address, "address", "", "host:port (port 502 by default), or the serial device for rtu (required)")
	fs.DurationVar(&conn.Timeout, "timeout", 0, "reply timeout (default 1s, 300ms for rtu)")
	fs.IntVar(&conn.Serial.BaudRate, "baud", 0, "rtu: baud rate (default 19200)")
	fs.StringVar(&parity, "parity", "", "rtu: none, even (default) or odd")
	fs.IntVar(&conn.Serial.StopBits, "stop-bits", 0, "rtu: 1 or 2 (default 1, 2 with parity none)")
	fs.IntVar(&conn.Serial.DataBits, "data-bits", 0, "rtu: 7 or 8 (default 8)")
	fs.StringVar(&caFile, "tls-ca", "", "tcp+tls: CA or server certificate (PEM)")
	fs.StringVar(&cert, "tls-cert", "", "tcp+tls: client certificate (PEM)")
	fs.StringVar(&key, "tls-key", "", "tcp+tls: client key (PEM)")
	fs.IntVar(&spec.UnitID, "unit", 1, "unit id")
	fs.StringVar(&spec.Register, "register", "holding", "holding, input, coil or discrete")
	fs.IntVar(&spec.Address, "start", 0, "first address (0-based, as on the wire)")
	fs.IntVar(&spec.Count, "count", 0, "values of -type to read (default 1); without -type, registers or bits (default 4 registers, 1 bit)")
	fs.StringVar(&spec.Type, "type", "", "bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string; empty: raw and every interpretation")
	fs.IntVar(&spec.Length, "length", 0, "string length in registers")
	fs.IntVar(&spec.Bit, "bit", 0, "bit of a register for -type bool (0 = least significant)")
	fs.StringVar(&spec.ByteOrder, "order", "", "byte order: ABCD (default), DCBA, BADC or CDAB")
	fs.Float64Var(&scale, "scale", 0, "multiply by this (0: no scaling)")
	fs.Float64Var(&offset, "offset", 0, "add this after scaling")
	if err := fs.Parse(args); err != nil {
		return conn, spec, err
	}
	if fs.NArg() > 0 {
		return conn, spec, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if conn.Address == "" {
		return conn, spec, errors.New("-address is required")
	}
	conn.Name = "read"
	conn.Transport = modbus.Transport(transport)
	conn.Serial.Parity = parity
	conn.TLS = fieldgate.TLSConfig{CAFile: caFile, CertFile: cert, KeyFile: key}
	if scale != 0 || offset != 0 {
		if scale == 0 {
			scale = 1
		}
		spec.Scale, spec.Offset = &scale, &offset
	}
	return conn, spec, nil
}
