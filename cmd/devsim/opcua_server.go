package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/server/attrs"
	"github.com/gopcua/opcua/ua"
)

// runOPCUAServer serves a simulated OPC UA server on addr (host:port) until ctx ends: gopcua's server package,
// namespace "urn:fieldgate:devsim", an object "Line1" with variables that change every 500 ms:
//
//	ns=<n>;s=Line1.Temperature  Double, 60 ± 5 °C sine over 60 s
//	ns=<n>;s=Line1.Pressure     Double, 4 ± 0.3 bar, sine over 17 s
//	ns=<n>;s=Line1.MotorSpeed   Float, 1450 ± 30 rpm
//	ns=<n>;s=Line1.Running      Boolean, off 5 s of every minute
//	ns=<n>;s=Line1.PartCount    UInt32, +1 every 500 ms
//	ns=<n>;s=Line1.Recipe       String
//	ns=<n>;s=Line1.Vibration    Double[3] (x, y, z)
//
// Security is None only: gopcua v0.8.0's server cannot open a signed or encrypted channel (its secure channel stays
// in mode None and never decrypts the OpenSecureChannel request), so a gateway subscribing to the simulator must
// say security.mode: None explicitly. The server certificate (kept in stateDir/devsim-opcua.*.pem so its
// fingerprint is stable) is still offered in the endpoints, for commissioning practice with `gateway opcua browse`.
func runOPCUAServer(ctx context.Context, addr string, stateDir string, log *slog.Logger) error {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("opcua server address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("opcua server address %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	cert, key, err := devsimOPCUACert(stateDir)
	if err != nil {
		return err
	}
	srv := server.New(
		server.EndPoint(host, port),
		server.PrivateKey(key), server.Certificate(cert),
		server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
		server.ServerName("fieldgate devsim"),
	)
	ns := server.NewNodeNameSpace(srv, "urn:fieldgate:devsim")
	// (server.NewFolderNode panics in v0.8.0: it puts a NodeClass into a Variant.)
	line := server.NewNode(ua.NewStringNodeID(ns.ID(), "Line1"), map[ua.AttributeID]*ua.DataValue{
		ua.AttributeIDNodeClass:     server.DataValueFromValue(uint32(ua.NodeClassObject)),
		ua.AttributeIDBrowseName:    server.DataValueFromValue(attrs.BrowseName("Line1")),
		ua.AttributeIDDisplayName:   server.DataValueFromValue(attrs.DisplayName("Line1", "Line1")),
		ua.AttributeIDEventNotifier: server.DataValueFromValue(int16(0)),
	}, nil, nil)
	ns.AddNode(line)
	ns.Objects().AddRef(line, server.RefTypeIDOrganizes, true)

	var mu sync.Mutex
	values := map[string]any{}
	var ids []*ua.NodeID
	add := func(name string, v any) {
		values[name] = v
		nid := ua.NewStringNodeID(ns.ID(), "Line1."+name)
		n := server.NewVariableNode(nid, name, func() *ua.DataValue {
			mu.Lock()
			defer mu.Unlock()
			return &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueServerTimestamp,
				Value: ua.MustVariant(values[name]), SourceTimestamp: time.Now(), ServerTimestamp: time.Now()}
		})
		ns.AddNode(n)
		line.AddRef(n, server.RefTypeIDHasComponent, true)
		ids = append(ids, nid)
	}
	add("Temperature", 60.0)
	add("Pressure", 4.0)
	add("MotorSpeed", float32(1450))
	add("Running", true)
	add("PartCount", uint32(0))
	add("Recipe", "PX-200")
	add("Vibration", []float64{0, 0, 0})

	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("opcua server on %s: %w", addr, err)
	}
	defer srv.Close()
	sum := sha256.Sum256(cert)
	log.Info("OPC UA server listening", "endpoint", fmt.Sprintf("opc.tcp://%s:%d", host, port), "security", "None",
		"namespace", "urn:fieldgate:devsim", "cert_sha256", fmt.Sprintf("%X", sum[:]))

	start := time.Now()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		t := time.Since(start).Seconds()
		mu.Lock()
		values["Temperature"] = 60 + 5*math.Sin(2*math.Pi*t/60)
		values["Pressure"] = 4 + 0.3*math.Sin(2*math.Pi*t/17)
		values["MotorSpeed"] = float32(1450 + 30*math.Sin(2*math.Pi*t/7))
		values["Running"] = int(t)%60 >= 5
		values["PartCount"] = values["PartCount"].(uint32) + 1
		values["Vibration"] = []float64{0.1 * math.Sin(t), 0.1 * math.Cos(t), 0.02 * math.Sin(3*t)}
		if int(t)%120 == 0 {
			values["Recipe"] = []string{"PX-200", "PX-300"}[int(t)/120%2]
		}
		mu.Unlock()
		for _, id := range ids {
			srv.ChangeNotification(id)
		}
	}
}

// devsimOPCUACert loads the simulator's server certificate from stateDir, or makes and keeps one.
func devsimOPCUACert(stateDir string) ([]byte, *rsa.PrivateKey, error) {
	certPath := filepath.Join(stateDir, "devsim-opcua.cert.pem")
	keyPath := filepath.Join(stateDir, "devsim-opcua.key.pem")
	if cb, err := os.ReadFile(certPath); err == nil {
		kb, err := os.ReadFile(keyPath)
		if err == nil {
			cblk, _ := pem.Decode(cb)
			kblk, _ := pem.Decode(kb)
			if cblk != nil && kblk != nil {
				if key, err := x509.ParsePKCS1PrivateKey(kblk.Bytes); err == nil {
					return cblk.Bytes, key, nil
				}
			}
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	u, _ := url.Parse("urn:fieldgate:devsim:opcua")
	tmpl := x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "fieldgate devsim OPC UA server", Organization: []string{"fieldgate"}},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment |
			x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	if stateDir != "" {
		if err := os.MkdirAll(stateDir, 0o700); err == nil {
			os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
			os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
		}
	}
	return der, key, nil
}
