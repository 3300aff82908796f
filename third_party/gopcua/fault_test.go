package opcua_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
)

// A service fault answers one call. Before, the dispatcher also reported it as a channel error, so a client
// without auto-reconnect went Disconnected (and one with it reconnected) on a BadTooManyOperations.
func TestServiceFaultEndsOnlyThatCall(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := server.New(server.EndPoint("127.0.0.1", port), server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous))
	srv.RegisterHandler(id.RegisterNodesRequest_Encoding_DefaultBinary, func(*uasc.SecureChannel, ua.Request, uint32) (ua.Response, error) {
		return nil, ua.StatusBadTooManyOperations
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	states := make(chan opcua.ConnState, 16)
	c, err := opcua.NewClient(srv.URLs()[0], opcua.AutoReconnect(false), opcua.StateChangedCh(states),
		opcua.SecurityMode(ua.MessageSecurityModeNone))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	_, err = c.RegisterNodes(ctx, &ua.RegisterNodesRequest{NodesToRegister: []*ua.NodeID{ua.NewNumericNodeID(0, id.Server)}})
	if !errors.Is(err, ua.StatusBadTooManyOperations) {
		t.Fatalf("RegisterNodes: %v, want the fault", err)
	}
	read := &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: ua.NewNumericNodeID(0, id.Server_ServerStatus_State), AttributeID: ua.AttributeIDValue}}}
	if _, err := c.Read(ctx, read); err != nil {
		t.Fatalf("read after the fault: %v", err)
	}
	for {
		select {
		case s := <-states:
			if s == opcua.Disconnected || s == opcua.Closed {
				t.Fatalf("the client went %v after a service fault", s)
			}
		default:
			return
		}
	}
}
