package ingest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// secureCluster starts a one-broker cluster with opts and writes n messages to topic
// "events" through dialer.
func secureCluster(t *testing.T, dialer *kafka.Dialer, n int, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(2, "events")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	tr := Transport(dialer)
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: "events", BatchTimeout: time.Millisecond, Transport: tr, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	var msgs []kafka.Message
	for i := range n {
		msgs = append(msgs, kafka.Message{Value: []byte{byte(i)}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	return brokers
}

func secureSource(t *testing.T, brokers []string, d *kafka.Dialer) *Kafka {
	t.Helper()
	k, err := NewKafka(KafkaOptions{Brokers: brokers, Topic: "events", GroupID: "g", Dialer: d})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustDialer(t *testing.T, s Security) *kafka.Dialer {
	t.Helper()
	d, err := Dialer(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustSASL(t *testing.T, mech, user, pass string) *kafka.Dialer {
	t.Helper()
	m, err := SASLMechanism(SASLOptions{Mechanism: mech, Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	return mustDialer(t, Security{SASL: m})
}

// waitNotReady runs k until Ready reports an error other than "not started" and
// returns it.
func waitNotReady(t *testing.T, k *Kafka) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = k.Run(ctx, HandlerFunc(func(context.Context, []Message) error { return nil }))
	}()
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := k.Ready()
		if err != nil && err != errNotStarted {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready() = %v, want an error", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestKafkaSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			const pass = "s3cret-Pa55word"
			brokers := secureCluster(t, mustSASL(t, mech, "alice", pass), 100,
				kfake.EnableSASL(), kfake.Superuser(mech, "alice", pass))

			got := consume(t, secureSource(t, brokers, mustSASL(t, mech, "alice", pass)), 100)
			if len(got) != 100 {
				t.Fatalf("got %d messages, want 100", len(got))
			}

			const wrong = "wrong-Pa55word-xyz"
			err := waitNotReady(t, secureSource(t, brokers, mustSASL(t, mech, "alice", wrong)))
			msg := strings.ToLower(err.Error())
			if !strings.Contains(msg, "sasl") && !strings.Contains(msg, "auth") {
				t.Errorf("Ready() = %v, want an authentication error", err)
			}
			if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), pass) {
				t.Errorf("Ready() = %v: contains the password", err)
			}
			t.Logf("wrong password: %v", err)
		})
	}
}

func TestSASLMechanismErrors(t *testing.T) {
	const pass = "hunter2-secret"
	for _, tc := range []struct{ mech, user, pass, want string }{
		{"GSSAPI", "u", pass, "unknown mechanism"},
		{"OAUTHBEARER", "u", pass, "no token source"},
		{"PLAIN", "", pass, "no username"},
		{"SCRAM-SHA-256", "u", "", "no password"},
	} {
		_, err := SASLMechanism(SASLOptions{Mechanism: tc.mech, Username: tc.user, Password: tc.pass})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SASLMechanism(%q, %q) = %v, want %q", tc.mech, tc.user, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), pass) {
			t.Errorf("error %v contains the password", err)
		}
	}
	for _, m := range []string{"plain", "scram-sha-256", "SCRAM-SHA-512"} {
		if _, err := SASLMechanism(SASLOptions{Mechanism: m, Username: "u", Password: "p"}); err != nil {
			t.Errorf("SASLMechanism(%q) = %v", m, err)
		}
	}
}

// pki writes a self-signed CA and, signed by it, a server certificate for 127.0.0.1
// and a client certificate, as PEM files in a temporary directory.
type pki struct {
	dir                       string
	caFile, certFile, keyFile string // client's
	pool                      *x509.CertPool
	server                    tls.Certificate
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "driftmon test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	}
	p := &pki{dir: dir, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	sc, sk := issue(2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	if p.server, err = tls.X509KeyPair(sc, sk); err != nil {
		t.Fatal(err)
	}
	cc, ck := issue(3, x509.ExtKeyUsageClientAuth, nil)
	p.caFile, p.certFile, p.keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	for f, b := range map[string][]byte{
		p.caFile:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		p.certFile: cc, p.keyFile: ck,
	} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestKafkaTLS(t *testing.T) {
	p := newPKI(t)
	for _, mutual := range []bool{false, true} {
		name := "server only"
		if mutual {
			name = "mutual"
		}
		t.Run(name, func(t *testing.T) {
			server := &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
			cert, key := "", ""
			if mutual {
				server.ClientAuth, server.ClientCAs = tls.RequireAndVerifyClientCert, p.pool
				cert, key = p.certFile, p.keyFile
			}
			tc, err := TLSConfig(p.caFile, cert, key, "", false)
			if err != nil {
				t.Fatal(err)
			}
			d := mustDialer(t, Security{TLS: tc})
			brokers := secureCluster(t, d, 100, kfake.TLS(server))
			if got := consume(t, secureSource(t, brokers, d), 100); len(got) != 100 {
				t.Fatalf("got %d messages, want 100", len(got))
			}
			// A client that does not trust the CA is not ready.
			untrusted := mustDialer(t, Security{TLS: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: x509.NewCertPool()}})
			if err := waitNotReady(t, secureSource(t, brokers, untrusted)); !strings.Contains(err.Error(), "certificate") {
				t.Errorf("Ready() = %v, want a certificate error", err)
			}
		})
	}
}

func TestTLSConfigErrors(t *testing.T) {
	p := newPKI(t)
	if _, err := TLSConfig(filepath.Join(p.dir, "missing.pem"), "", "", "", false); err == nil || !strings.Contains(err.Error(), "ca file") {
		t.Errorf("missing CA file: %v", err)
	}
	if _, err := TLSConfig(p.keyFile, "", "", "", false); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("CA file without certificate: %v", err)
	}
	if _, err := TLSConfig("", p.certFile, "", "", false); err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("cert without key: %v", err)
	}
	c, err := TLSConfig("", p.certFile, p.keyFile, "broker.example", true)
	if err != nil || c.ServerName != "broker.example" || !c.InsecureSkipVerify || len(c.Certificates) != 1 || c.RootCAs != nil {
		t.Errorf("TLSConfig = %+v, %v", c, err)
	}
}
