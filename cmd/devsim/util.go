package main

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
)

func portOf(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}

// logWriter turns a library's text log lines into records of our logger.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Log(context.Background(), slog.LevelWarn, strings.TrimSpace(string(p)))
	return len(p), nil
}
