package uacp

import (
	"context"
	"encoding/binary"
	"net"
	"strconv"
	"testing"
	"time"
)

// A server that acknowledges with the largest values cannot raise what the client receives: the client's
// limits are those of its Hello, and a chunk larger than its receive buffer is refused before it is read.
func TestClientKeepsItsReceiveLimits(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := "opc.tcp://127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	huge := &Acknowledge{ReceiveBufSize: 0xffffffff, SendBufSize: 0xffffffff, MaxMessageSize: 0xffffffff, MaxChunkCount: 0xffffffff}
	ln, err := Listen(context.Background(), ep, huge)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv := make(chan *Conn, 1)
	go func() {
		c, err := ln.Accept(ctx)
		if err != nil {
			t.Error(err)
		}
		srv <- c
	}()

	d := &Dialer{ClientACK: &Acknowledge{ReceiveBufSize: 8192, SendBufSize: 8192, MaxMessageSize: 1 << 20, MaxChunkCount: 16}}
	c, err := d.Dial(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-srv
	if s == nil {
		t.FailNow()
	}
	defer s.Close()
	if c.ReceiveBufSize() != 8192 || c.MaxMessageSize() != 1<<20 || c.MaxChunkCount() != 16 {
		t.Errorf("client receives chunks up to %d, messages up to %d in %d chunks: want its own 8192, 1 MiB and 16",
			c.ReceiveBufSize(), c.MaxMessageSize(), c.MaxChunkCount())
	}

	hdr := []byte("MSGF\x00\x00\x00\x00")
	binary.LittleEndian.PutUint32(hdr[4:], 100<<20)
	if _, err := s.TCPConn.Write(hdr); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Receive(); err == nil {
		t.Error("a chunk of 100 MiB was accepted with a receive buffer of 8192 bytes")
	}
}
