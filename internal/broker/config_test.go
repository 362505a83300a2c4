package broker

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
)

const secret = "s3cr3t-Pa55"

func TestConfigOptsErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // substring naming the setting at fault
	}{
		{name: "no brokers", cfg: Config{}, want: "Brokers: empty"},
		{name: "blank brokers", cfg: Config{Brokers: []string{" ", ""}}, want: "Brokers: empty"},
		{name: "unknown mechanism", cfg: Config{Brokers: []string{"h:1"}, SASLMechanism: "GSSAPI", SASLUser: "u", SASLPassword: secret}, want: "SASLMechanism: \"GSSAPI\""},
		{name: "mechanism without password", cfg: Config{Brokers: []string{"h:1"}, SASLMechanism: "PLAIN", SASLUser: "u"}, want: "SASLMechanism: PLAIN needs both a SASL user and a SASL password"},
		{name: "user without mechanism", cfg: Config{Brokers: []string{"h:1"}, SASLUser: "u", SASLPassword: secret}, want: "SASLMechanism: not set, but a SASL user or password is"},
		{name: "cert without key", cfg: Config{Brokers: []string{"h:1"}, TLSCertFile: "c.pem"}, want: "TLSCertFile: given without its key file"},
		{name: "key without cert", cfg: Config{Brokers: []string{"h:1"}, TLSKeyFile: "k.pem"}, want: "TLSKeyFile: given without its certificate file"},
		{name: "missing CA file", cfg: Config{Brokers: []string{"h:1"}, TLSCAFile: filepath.Join(dir, "nope.pem")}, want: "TLSCAFile: "},
		{name: "CA file without PEM", cfg: Config{Brokers: []string{"h:1"}, TLSCAFile: notPEM}, want: "holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.Opts()
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Opts() error = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestConfigRedactsPassword(t *testing.T) {
	c := Config{Brokers: []string{"h:9092"}, SASLMechanism: "scram-sha-512", SASLUser: "alice", SASLPassword: secret}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("kafka", "config", c)
	for name, s := range map[string]string{"String": c.String(), "log": buf.String()} {
		if strings.Contains(s, secret) {
			t.Errorf("%s shows the password: %s", name, s)
		}
		if !strings.Contains(s, "alice") || !strings.Contains(s, "SCRAM-SHA-512") {
			t.Errorf("%s lacks user or mechanism: %s", name, s)
		}
	}
}

// TestConfigSASL logs in to an embedded broker that requires SASL, with each
// mechanism, and with a wrong password.
func TestConfigSASL(t *testing.T) {
	e := startBroker(t, "", WithKfakeOptions(
		kfake.EnableSASL(),
		kfake.Superuser(SASLPlain, "plainuser", secret),
		kfake.Superuser(SASLScramSHA256, "scram256", secret),
		kfake.Superuser(SASLScramSHA512, "scram512", secret),
	))
	for _, tc := range []struct {
		name, mech, user, pass string
		ok                     bool
	}{
		{name: "plain", mech: "PLAIN", user: "plainuser", pass: secret, ok: true},
		{name: "scram-sha-256 lower case", mech: "scram-sha-256", user: "scram256", pass: secret, ok: true},
		{name: "scram-sha-512", mech: "SCRAM-SHA-512", user: "scram512", pass: secret, ok: true},
		{name: "wrong password", mech: "PLAIN", user: "plainuser", pass: secret + "x"},
		{name: "no SASL", mech: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c := Config{Brokers: []string{e.Addr()}, SASLMechanism: tc.mech, SASLUser: tc.user, SASLPassword: tc.pass}
			cl, err := NewClient(ctx, c)
			if tc.ok {
				if err != nil {
					t.Fatalf("NewClient: %v", err)
				}
				defer cl.Close()
				if _, err := ListTopics(ctx, kadm.NewClient(cl)); err != nil {
					t.Errorf("list topics after login: %v", err)
				}
				return
			}
			if err == nil {
				cl.Close()
				t.Fatal("NewClient succeeded, want a refused login")
			}
			if !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), secret) {
				t.Errorf("error %q: want ErrUnreachable without the password", err)
			}
			if tc.mech != "" && !strings.Contains(err.Error(), "SASL") {
				t.Errorf("error %q does not point at the SASL settings", err)
			}
		})
	}
}

// certs writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all PEM, into dir.
type certs struct {
	caFile, serverCert, serverKey, clientCert, clientKey string
	caPool                                               *x509.CertPool
}

func makeCerts(t *testing.T, dir string) certs {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage, certName, keyName string) (string, string) {
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: certName},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(certName, "CERTIFICATE", der), write(keyName, "EC PRIVATE KEY", kder)
	}
	c := certs{caFile: write("ca.pem", "CERTIFICATE", caDER), caPool: x509.NewCertPool()}
	c.caPool.AddCert(caCert)
	c.serverCert, c.serverKey = leaf(2, x509.ExtKeyUsageServerAuth, "server.pem", "server-key.pem")
	c.clientCert, c.clientKey = leaf(3, x509.ExtKeyUsageClientAuth, "client.pem", "client-key.pem")
	return c
}

// TestConfigTLS connects to an embedded broker that requires mutual TLS.
func TestConfigTLS(t *testing.T) {
	cs := makeCerts(t, t.TempDir())
	serverCert, err := tls.LoadX509KeyPair(cs.serverCert, cs.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	e := startBroker(t, "", WithKfakeOptions(kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientCAs:    cs.caPool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	})))
	base := Config{Brokers: []string{e.Addr()}}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{name: "CA and client cert", ok: true, mod: func(c *Config) {
			c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile = cs.caFile, cs.clientCert, cs.clientKey
		}},
		{name: "insecure with client cert", ok: true, mod: func(c *Config) {
			c.TLSInsecureSkipVerify, c.TLSCertFile, c.TLSKeyFile = true, cs.clientCert, cs.clientKey
		}},
		{name: "no client cert", mod: func(c *Config) { c.TLSCAFile = cs.caFile }},
		{name: "server cert not trusted", mod: func(c *Config) {
			c.TLS, c.TLSCertFile, c.TLSKeyFile = true, cs.clientCert, cs.clientKey
		}},
		{name: "plaintext to a TLS broker", mod: func(*Config) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.mod(&c)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			cl, err := NewClient(ctx, c)
			if tc.ok {
				if err != nil {
					t.Fatalf("NewClient: %v", err)
				}
				defer cl.Close()
				if _, err := ListTopics(ctx, kadm.NewClient(cl)); err != nil {
					t.Errorf("list topics over TLS: %v", err)
				}
				return
			}
			if err == nil {
				cl.Close()
				t.Fatal("NewClient succeeded, want a failed TLS connection")
			}
			if !errors.Is(err, ErrUnreachable) {
				t.Errorf("error %v, want ErrUnreachable", err)
			}
		})
	}
}

func TestNewClientUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, err = NewClient(ctx, Config{Brokers: []string{addr}})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("NewClient to a closed port: %v, want ErrUnreachable", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "cannot reach Kafka at "+addr+": ") || !strings.Contains(msg, "userstream broker") {
		t.Errorf("error %q: want it to name the address and say how to start a broker", msg)
	}
}
