package mqtt

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// gatedStore holds persist.All until released, so that a test can make resume look at the store only after a
// publish made on the new connection has been stored and written.
type gatedStore struct {
	*MemoryStore
	mu   sync.Mutex
	gate chan struct{}
}

func (s *gatedStore) arm() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
	return s.gate
}

func (s *gatedStore) All() []string {
	s.mu.Lock()
	g := s.gate
	s.gate = nil
	s.mu.Unlock()
	if g != nil {
		select {
		case <-g:
		case <-time.After(5 * time.Second):
		}
	}
	return s.MemoryStore.All()
}

// A QoS 1 message published by the OnConnect handler of a reconnect can be found by that reconnect's resume while
// the outgoing goroutine writes it. Resume sends it again with DUP set, and must not set DUP on the packet being
// written: under -race this test failed with a race between resume and packets.(*FixedHeader).pack.
func TestResumeDoesNotWriteAPacketBeingSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	store := &gatedStore{MemoryStore: NewMemoryStore()}
	resent := make(chan *packets.PublishPacket, 1)
	go func() {
		for n := 1; ; n++ {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			var gate chan struct{}
			if n == 2 {
				gate = store.arm() // before the CONNACK: the reconnect's resume waits until the publish is here
			}
			go func(n int, conn net.Conn) {
				defer conn.Close()
				var first *packets.PublishPacket
				for {
					p, err := packets.ReadPacket(conn)
					if err != nil {
						return
					}
					switch p := p.(type) {
					case *packets.ConnectPacket:
						_ = packets.NewControlPacket(packets.Connack).Write(conn)
						if n == 1 {
							return // the connection is lost at once: the client reconnects
						}
					case *packets.PublishPacket:
						if first == nil {
							first = p
							close(gate)
							continue
						}
						if p.MessageID == first.MessageID {
							resent <- p
						}
					}
				}
			}(n, conn)
		}
	}()

	var (
		once sync.Once
		nmu  sync.Mutex
		n    int
	)
	o := NewClientOptions().AddBroker("tcp://" + ln.Addr().String()).SetClientID("resume").SetStore(store).
		SetAutoReconnect(true).SetMaxReconnectInterval(10 * time.Millisecond)
	o.SetOnConnectHandler(func(c Client) {
		nmu.Lock()
		n++
		second := n == 2
		nmu.Unlock()
		if second {
			once.Do(func() { c.Publish("a/b", 1, false, []byte("x")) })
		}
	})
	c := NewClient(o)
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(10)
	select {
	case p := <-resent:
		if !p.Dup {
			t.Fatalf("the resent publish has no DUP flag")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("resume did not resend the publish")
	}
	for _, key := range store.MemoryStore.All() {
		if p, ok := store.MemoryStore.Get(key).(*packets.PublishPacket); ok && p.Dup {
			t.Fatalf("resume set DUP on the stored packet %d", p.MessageID)
		}
	}
}
