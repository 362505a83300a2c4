package schema

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/userstream/userstream/internal/redact"
	"github.com/userstream/userstream/internal/user"
)

// Encoder turns a record into a Kafka message value.
type Encoder interface {
	Encode(r user.Record) ([]byte, error)
}

// Decoder turns a Kafka message value back into a record.
type Decoder interface {
	Decode(b []byte) (user.Record, error)
}

var (
	_ Encoder = (*Serde)(nil)
	_ Decoder = (*Serde)(nil)
	_ Encoder = user.JSON{}
	_ Decoder = user.JSON{}
)

// headerLen is the Confluent wire format's header: magic byte 0 and a
// big-endian uint32 schema id.
const headerLen = 5

// Option configures a Serde.
type Option func(*config)

type config struct {
	subject        string
	schema         string
	register       bool
	lookupTimeout  time.Duration
	logger         *slog.Logger
	registryURLStr string
}

// WithSubject sets the registry subject (default Subject,
// "users_created-value").
func WithSubject(subject string) Option { return func(c *config) { c.subject = subject } }

// WithSchema replaces the embedded Avro schema (UserSchema) with text. The
// schema must be a record whose fields user.Record can fill: fields the
// record lacks need a default. It is how a new version is tried out.
func WithSchema(text string) Option { return func(c *config) { c.schema = text } }

// WithoutRegistration makes NewSerde look the schema up instead of
// registering it, for readers that must not change the registry (a stream
// worker). If the registry does not have the schema, Decode still works and
// Encode returns ErrNotRegistered.
func WithoutRegistration() Option { return func(c *config) { c.register = false } }

// WithLookupTimeout bounds each registry request Decode makes to fetch an
// unknown writer schema (default 10s).
func WithLookupTimeout(d time.Duration) Option { return func(c *config) { c.lookupTimeout = d } }

// WithLogger sets the logger for registrations and schema look-ups (default:
// discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Serde encodes records as Avro in the Confluent wire format with the schema
// registered under its subject, and decodes Avro written with any schema the
// registry knows (resolved into the current schema) as well as plain JSON.
// It is safe for concurrent use.
type Serde struct {
	client  *sr.Client
	regURL  string // redacted, for messages
	subject string
	text    string
	reader  avro.Schema
	id      int // 0 when not registered (WithoutRegistration)
	version int
	header  [headerLen]byte
	api     avro.API
	compat  *avro.SchemaCompatibility
	timeout time.Duration
	logger  *slog.Logger

	writers sync.Map  // uint32 -> *writerEntry
	pool    sync.Pool // *avro.Writer
	readers sync.Pool // *avro.Reader
}

// writerEntry is one schema id's resolved schema, fetched once; done is
// closed when schema/err are set.
type writerEntry struct {
	done   chan struct{}
	schema avro.Schema
	err    error
}

// NewSerde parses the Avro schema (the embedded one unless WithSchema),
// checks locally that it can read messages written with the latest version
// registered under the subject (BACKWARD, decided by hamba/avro, so an
// incompatible change fails here even if the registry would accept it), and
// registers it. Registering a schema the subject already has returns its
// existing id, so NewSerde is idempotent. Errors wrap ErrIncompatible,
// ErrRegistryUnavailable, or the registry's own error.
func NewSerde(ctx context.Context, client *sr.Client, opts ...Option) (*Serde, error) {
	if client == nil {
		return nil, errors.New("schema: NewSerde needs a schema registry client")
	}
	cfg := config{subject: Subject, schema: userSchema, register: true, lookupTimeout: 10 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	reader, err := Parse(cfg.schema)
	if err != nil {
		return nil, fmt.Errorf("schema: parse Avro schema for %s: %w", cfg.subject, err)
	}
	if _, ok := reader.(*avro.RecordSchema); !ok {
		return nil, fmt.Errorf("schema: the schema for %s is a %s, not a record", cfg.subject, reader.Type())
	}
	s := &Serde{
		client:  client,
		regURL:  registryURL(client),
		subject: cfg.subject,
		text:    cfg.schema,
		reader:  reader,
		api:     avro.Config{}.Freeze(),
		compat:  avro.NewSchemaCompatibility(),
		timeout: cfg.lookupTimeout,
		logger:  cfg.logger,
	}
	s.pool.New = func() any { return avro.NewWriter(nil, 512, avro.WithWriterConfig(s.api)) }
	s.readers.New = func() any { return avro.NewReader(nil, 0, avro.WithReaderConfig(s.api)) }

	latest, err := client.SchemaByVersion(ctx, s.subject, -1)
	switch {
	case err == nil:
		if err := s.checkAgainst(latest); err != nil {
			return nil, err
		}
	case isNotFound(err):
		// First version of the subject: nothing to be compatible with.
	default:
		return nil, s.registryErr(fmt.Sprintf("look up the latest version of %s", s.subject), err)
	}

	// The encoder must fill every field of the schema from a record.
	if _, err := s.api.Marshal(reader, toWire(user.Record{})); err != nil && cfg.register {
		return nil, fmt.Errorf("schema: the schema for %s cannot be written from user.Record (fields the record lacks need a default): %w", cfg.subject, err)
	}
	ss, err := s.registerOrLookup(ctx, cfg.register)
	if err != nil {
		return nil, err
	}
	if ss.ID > 0 {
		s.id, s.version = ss.ID, ss.Version
		binary.BigEndian.PutUint32(s.header[1:], uint32(ss.ID))
		e := &writerEntry{done: make(chan struct{}), schema: reader}
		close(e.done)
		s.writers.Store(uint32(ss.ID), e)
	}
	return s, nil
}

// checkAgainst fails if the serde's schema cannot read messages written with
// the registered version latest.
func (s *Serde) checkAgainst(latest sr.SubjectSchema) error {
	if latest.Type != sr.TypeAvro {
		return fmt.Errorf("schema: the latest version (%d) of %s is a %s schema, not Avro: %w", latest.Version, s.subject, latest.Type, ErrNotAvro)
	}
	prev, err := Parse(latest.Schema.Schema)
	if err != nil {
		return fmt.Errorf("schema: parse version %d (id %d) of %s from the registry: %w", latest.Version, latest.ID, s.subject, err)
	}
	if prev.Fingerprint() == s.reader.Fingerprint() {
		return nil
	}
	if err := checkBackward(s.compat, s.reader, prev); err != nil {
		return fmt.Errorf("schema for %s is not backward compatible with version %d (id %d): %w; keep the old fields' types and give new fields defaults",
			s.subject, latest.Version, latest.ID, err)
	}
	return nil
}

func (s *Serde) registerOrLookup(ctx context.Context, register bool) (sr.SubjectSchema, error) {
	sch := sr.Schema{Schema: s.text, Type: sr.TypeAvro}
	if !register {
		ss, err := s.client.LookupSchema(ctx, s.subject, sch)
		if err != nil {
			if isNotFound(err) {
				s.logger.Info("schema not registered; this serde decodes only", "subject", s.subject)
				return sr.SubjectSchema{}, nil
			}
			return sr.SubjectSchema{}, s.registryErr("look up the schema of "+s.subject, err)
		}
		return ss, nil
	}
	ss, err := s.client.CreateSchema(ctx, s.subject, sch)
	if err != nil {
		return sr.SubjectSchema{}, s.registryErr("register the schema of "+s.subject, err)
	}
	// The registry logs a schema it adds; this says which one the serde writes.
	s.logger.Info("writing with schema", "subject", s.subject, "version", ss.Version, "id", ss.ID)
	return ss, nil
}

// ID returns the registry id of the serde's schema (0 if it is not
// registered).
func (s *Serde) ID() int { return s.id }

// Version returns the subject version of the serde's schema (0 if it is not
// registered).
func (s *Serde) Version() int { return s.version }

// Subject returns the registry subject the serde writes under.
func (s *Serde) Subject() string { return s.subject }

// Schema returns the serde's Avro schema, which is also the reader schema
// every message is resolved into.
func (s *Serde) Schema() avro.Schema { return s.reader }

// Encode writes r as magic byte 0, the schema id (big endian, 4 bytes) and
// the Avro binary of r. IngestedAt keeps millisecond precision. It returns
// ErrNotRegistered if the serde has no schema id.
func (s *Serde) Encode(r user.Record) ([]byte, error) {
	if s.id == 0 {
		return nil, fmt.Errorf("schema: encode for %s: %w (built WithoutRegistration and the registry has no such schema)", s.subject, ErrNotRegistered)
	}
	w := s.pool.Get().(*avro.Writer)
	defer s.pool.Put(w)
	w.Reset(nil)
	w.Error = nil
	_, _ = w.Write(s.header[:])
	wire := toWire(r)
	w.WriteVal(s.reader, &wire)
	if w.Error != nil {
		return nil, fmt.Errorf("schema: encode user %q as Avro: %w", r.ID, w.Error)
	}
	out := make([]byte, w.Buffered())
	copy(out, w.Buffer())
	return out, nil
}

// Decode reads a message value. A value starting with byte 0 is Confluent
// Avro: its writer schema is fetched from the registry by id (once per id;
// concurrent callers share the fetch) and resolved into the serde's schema,
// so messages of older and newer compatible versions read alike. Any other
// value is read as user JSON (ours or the original pipeline's). Errors wrap
// ErrTruncated, ErrUnknownSchema, ErrRegistryUnavailable, ErrIncompatible,
// ErrMalformed or ErrNotAvro.
func (s *Serde) Decode(b []byte) (user.Record, error) {
	if len(b) == 0 {
		return user.Record{}, fmt.Errorf("schema: empty message: %w", ErrNotAvro)
	}
	if b[0] != 0 {
		r, err := user.DecodeJSON(b)
		if err != nil {
			return user.Record{}, fmt.Errorf("schema: message is neither Confluent Avro (first byte %#02x, not magic byte 0): %w, nor user JSON: %w", b[0], ErrNotAvro, err)
		}
		return r, nil
	}
	if len(b) < headerLen {
		return user.Record{}, fmt.Errorf("schema: %w: %d bytes, but the Confluent header alone is %d", ErrTruncated, len(b), headerLen)
	}
	id := binary.BigEndian.Uint32(b[1:headerLen])
	sch, err := s.writer(id)
	if err != nil {
		return user.Record{}, err
	}
	// hamba's Unmarshal takes a body that ends at a field boundary for a
	// complete one; its Reader reports the EOF.
	rd := s.readers.Get().(*avro.Reader)
	defer func() {
		rd.Reset(nil)
		s.readers.Put(rd)
	}()
	rd.Reset(b[headerLen:])
	rd.Error = nil
	var w wireUser
	rd.ReadVal(sch, &w)
	if err := rd.Error; err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return user.Record{}, fmt.Errorf("schema: %w: Avro body of schema id %d ends early (%d bytes): %v", ErrTruncated, id, len(b)-headerLen, err)
		}
		return user.Record{}, fmt.Errorf("schema: %w for schema id %d: %v", ErrMalformed, id, err)
	}
	if rd.Peek(); rd.Error == nil {
		return user.Record{}, fmt.Errorf("schema: %w for schema id %d: trailing bytes after the record", ErrMalformed, id)
	}
	return w.record(), nil
}

// writer returns the schema to decode messages of schema id with: the
// writer schema resolved into the reader schema.
func (s *Serde) writer(id uint32) (avro.Schema, error) {
	if v, ok := s.writers.Load(id); ok {
		e := v.(*writerEntry)
		<-e.done
		return e.schema, e.err
	}
	e := &writerEntry{done: make(chan struct{})}
	if v, loaded := s.writers.LoadOrStore(id, e); loaded {
		// Another caller is fetching this id: share its outcome.
		other := v.(*writerEntry)
		<-other.done
		return other.schema, other.err
	}
	e.schema, e.err = s.fetch(id)
	if e.err != nil {
		// Forget failures before waking the waiters, so the next message
		// with this id asks the registry again.
		s.writers.CompareAndDelete(id, e)
	}
	close(e.done)
	return e.schema, e.err
}

func (s *Serde) fetch(id uint32) (avro.Schema, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	got, err := s.client.SchemaByID(ctx, int(id))
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("schema: %w %d: the registry at %s does not have it (was the registry reset, or its data dir lost?)", ErrUnknownSchema, id, s.regURL)
		}
		return nil, s.registryErr(fmt.Sprintf("fetch schema id %d", id), err)
	}
	if got.Type != sr.TypeAvro {
		return nil, fmt.Errorf("schema: schema id %d is a %s schema: %w", id, got.Type, ErrNotAvro)
	}
	ws, err := Parse(got.Schema)
	if err != nil {
		return nil, fmt.Errorf("schema: parse schema id %d from the registry: %w", id, err)
	}
	s.logger.Debug("writer schema fetched", "id", id)
	if ws.Fingerprint() == s.reader.Fingerprint() {
		return s.reader, nil
	}
	res, err := s.compat.Resolve(s.reader, ws)
	if err != nil {
		return nil, fmt.Errorf("schema: messages of schema id %d cannot be read with the schema of %s: %w: %s", id, s.subject, ErrIncompatible, explain(s.compat, s.reader, ws, err))
	}
	return res, nil
}

// isNotFound reports whether err is the registry's 404 (subject, version or
// schema not found).
func isNotFound(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// registryErr wraps a failed registry call: ErrRegistryUnavailable for
// transport failures and server errors, the registry's answer otherwise.
// Credentials in the registry URL never appear in the message.
func (s *Serde) registryErr(what string, err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) && re.StatusCode < 500 {
		return fmt.Errorf("schema: %s at %s: registry answered %d: %w", what, s.regURL, re.StatusCode, hideCredentials(err, s.client))
	}
	return fmt.Errorf("schema: %s: %w at %s: %w", what, ErrRegistryUnavailable, s.regURL, hideCredentials(err, s.client))
}

// registryURL returns the client's first URL without credentials.
func registryURL(cl *sr.Client) string {
	urls, _ := cl.OptValue(sr.URLs).([]string)
	if len(urls) == 0 {
		return "http://localhost:8081"
	}
	return redact.URL(urls[0])
}

// hideCredentials hides the credentials of the client's URLs in err's message.
func hideCredentials(err error, cl *sr.Client) error {
	urls, _ := cl.OptValue(sr.URLs).([]string)
	return redact.Error(err, urls...)
}
