// Package broker is the pipeline's Kafka: client settings, its two topics,
// consumer lag, and the embedded one-node broker for development.
//
// Clients are franz-go's (kgo, kadm); the embedded broker is franz-go's
// kfake with a data directory, which `userstream broker` and `userstream dev`
// run when no Kafka cluster is given.
package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/userstream/userstream/internal/redact"
)

// SASL mechanisms accepted in [Config.SASLMechanism].
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// DefaultPingTimeout bounds how long [NewClient] waits for the first broker
// to answer when the context has no earlier deadline.
const DefaultPingTimeout = 10 * time.Second

var (
	// ErrInvalidConfig is matched by every error [Config.Opts] returns (a
	// *SettingError): the settings contradict each other or name a file
	// that cannot be read. A command reports it as wrong usage.
	ErrInvalidConfig = errors.New("invalid Kafka client settings")

	// ErrUnreachable is wrapped by the error [NewClient] returns when no
	// broker answered.
	ErrUnreachable = errors.New("cannot reach Kafka")
)

// Config is how to reach a Kafka cluster: seed brokers, TLS and SASL. The
// zero value is not usable: Brokers must hold at least one host:port.
//
// SASLPassword never appears in errors or logs: Config's LogValue and String
// redact it.
type Config struct {
	// Brokers are the seed brokers, host:port each.
	Brokers []string

	// TLS dials the brokers over TLS. Setting any of the TLS fields below
	// implies it.
	TLS bool
	// TLSCAFile is a PEM file of CA certificates to trust instead of the
	// system pool.
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are a PEM client certificate and its key
	// for mutual TLS; both or neither.
	TLSCertFile, TLSKeyFile string
	// TLSInsecureSkipVerify accepts any server certificate. For tests only.
	TLSInsecureSkipVerify bool

	// SASLMechanism is "" (no SASL), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512,
	// in any letter case.
	SASLMechanism string
	// SASLUser and SASLPassword are the SASL credentials; both are
	// required when SASLMechanism is set.
	SASLUser, SASLPassword string

	// ClientID is the client id sent to the brokers; "" keeps franz-go's
	// default.
	ClientID string
}

// usesTLS reports whether any TLS setting is given.
func (c Config) usesTLS() bool {
	return c.TLS || c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSKeyFile != "" || c.TLSInsecureSkipVerify
}

// brokers returns the seed brokers with blanks and spaces removed.
func (c Config) brokers() []string {
	var bs []string
	for _, b := range c.Brokers {
		if b = strings.TrimSpace(b); b != "" {
			bs = append(bs, b)
		}
	}
	return bs
}

// SettingError is the error of a Config that cannot work: Setting names
// the field at fault (Brokers, TLSCAFile, SASLMechanism...), Problem says
// what is wrong in words. It matches [ErrInvalidConfig]. A command turns
// Setting into its own flag's name.
type SettingError struct {
	Setting string
	Problem string
	Err     error // the underlying error, if any (a file that cannot be read)
}

func (e *SettingError) Error() string { return e.Setting + ": " + e.Problem }

// Unwrap returns ErrInvalidConfig and the underlying error.
func (e *SettingError) Unwrap() []error { return []error{ErrInvalidConfig, e.Err} }

func settingErr(setting string, err error, format string, args ...any) error {
	return &SettingError{Setting: setting, Problem: fmt.Sprintf(format, args...), Err: err}
}

// Opts returns the kgo options for c: seed brokers, client id, TLS dialing
// and SASL. Every error is a *SettingError naming the field at fault: no
// brokers, a TLS certificate without its key (or the reverse), an
// unreadable or empty CA file, an unknown SASL mechanism, or a mechanism
// without user or password.
func (c Config) Opts() ([]kgo.Opt, error) {
	brokers := c.brokers()
	if len(brokers) == 0 {
		return nil, settingErr("Brokers", nil, "empty: give at least one host:port, e.g. 127.0.0.1:9092")
	}
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	if c.ClientID != "" {
		opts = append(opts, kgo.ClientID(c.ClientID))
	}

	if c.usesTLS() {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}

	mech := strings.ToUpper(strings.TrimSpace(c.SASLMechanism))
	if mech == "" {
		if c.SASLUser != "" || c.SASLPassword != "" {
			return nil, settingErr("SASLMechanism", nil, "not set, but a SASL user or password is: give PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		}
		return opts, nil
	}
	if c.SASLUser == "" || c.SASLPassword == "" {
		return nil, settingErr("SASLMechanism", nil, "%s needs both a SASL user and a SASL password", mech)
	}
	switch mech {
	case SASLPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsMechanism()))
	case SASLScramSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha256Mechanism()))
	case SASLScramSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha512Mechanism()))
	default:
		return nil, settingErr("SASLMechanism", nil, "%q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASLMechanism)
	}
	return opts, nil
}

func (c Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLSInsecureSkipVerify} //nolint:gosec // opt-in flag for tests
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, settingErr("TLSCAFile", err, "%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, settingErr("TLSCAFile", nil, "%s holds no PEM certificate", c.TLSCAFile)
		}
		tc.RootCAs = pool
	}
	switch {
	case c.TLSCertFile != "" && c.TLSKeyFile != "":
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, settingErr("TLSCertFile", err, "with its key: %v", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case c.TLSCertFile != "":
		return nil, settingErr("TLSCertFile", nil, "given without its key file")
	case c.TLSKeyFile != "":
		return nil, settingErr("TLSKeyFile", nil, "given without its certificate file")
	}
	return tc, nil
}

// String describes c for people, with the password redacted.
func (c Config) String() string {
	s := "brokers=" + strings.Join(c.brokers(), ",")
	if c.usesTLS() {
		s += " tls=true"
	}
	if c.SASLMechanism != "" {
		s += fmt.Sprintf(" sasl=%s user=%s password=%s", strings.ToUpper(c.SASLMechanism), c.SASLUser, redact.Mask)
	}
	return s
}

// LogValue implements slog.LogValuer so that logging a Config never prints
// the password.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("brokers", strings.Join(c.brokers(), ",")), slog.Bool("tls", c.usesTLS())}
	if c.SASLMechanism != "" {
		attrs = append(attrs, slog.String("sasl", strings.ToUpper(c.SASLMechanism)), slog.String("sasl_user", c.SASLUser))
	}
	return slog.GroupValue(attrs...)
}

// NewClient builds a client from c plus extra options (later options win)
// and pings the cluster, so that a wrong address fails here with a clear
// error rather than later as a stalled produce or fetch. The ping waits at
// most [DefaultPingTimeout] unless ctx ends first.
//
// Errors: settings errors wrap [ErrInvalidConfig]; no answer wraps
// [ErrUnreachable] and reads "cannot reach Kafka at HOSTS: ..." with what
// to check. The client is closed on every error.
func NewClient(ctx context.Context, c Config, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := c.Opts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	pctx, cancel := context.WithTimeout(ctx, DefaultPingTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, unreachable(c, err)
	}
	return cl, nil
}

// unreachable explains a failed ping and says what to check.
func unreachable(c Config, err error) error {
	hosts := strings.Join(c.brokers(), ",")
	var hint string
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState), errors.Is(err, kerr.UnsupportedSaslMechanism):
		hint = "the broker refused the SASL login: check the SASL mechanism, user and password"
	case c.SASLMechanism != "" && errors.Is(err, io.EOF):
		hint = "the broker closed the connection, which brokers do on a failed SASL login: check the SASL mechanism, user and password"
	case c.usesTLS():
		hint = "is a broker listening there, and does it speak TLS? check the broker addresses, the CA and the client certificate"
	default:
		hint = "is a broker running there? start one with `userstream broker`, or fix the broker addresses (inside Docker Compose use the service name, e.g. broker:29092)"
	}
	return fmt.Errorf("%w at %s: %w; %s", ErrUnreachable, hosts, err, hint)
}
