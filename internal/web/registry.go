package web

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/userstream/userstream/internal/redact"
)

// Registry reads a Schema Registry over HTTP (ours or Confluent's) for the
// Schemas page and to decode Avro messages by their schema id.
type Registry struct {
	cl *sr.Client

	mu     sync.Mutex
	byID   map[int]avro.Schema
	failed map[int]error
}

// NewRegistry returns a Registry over cl.
func NewRegistry(cl *sr.Client) *Registry {
	return &Registry{cl: cl, byID: map[int]avro.Schema{}, failed: map[int]error{}}
}

// SubjectInfo is one subject of the Schemas page.
type SubjectInfo struct {
	Subject  string `json:"subject"`
	Versions []int  `json:"versions"`
	Level    string `json:"compatibility"`
}

func (g *Registry) subjects(ctx context.Context) ([]SubjectInfo, string, error) {
	subs, err := g.cl.Subjects(ctx)
	if err != nil {
		return nil, "", err
	}
	global := ""
	if r := g.cl.Compatibility(ctx); len(r) == 1 && r[0].Err == nil {
		global = r[0].Level.String()
	}
	out := make([]SubjectInfo, 0, len(subs))
	for _, s := range subs {
		vs, err := g.cl.SubjectVersions(ctx, s)
		if err != nil {
			return nil, "", err
		}
		info := SubjectInfo{Subject: s, Versions: vs, Level: global}
		if r := g.cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), s); len(r) == 1 && r[0].Err == nil {
			info.Level = r[0].Level.String()
		}
		out = append(out, info)
	}
	return out, global, nil
}

func (g *Registry) version(ctx context.Context, subject string, v int) (sr.SubjectSchema, error) {
	return g.cl.SchemaByVersion(ctx, subject, v)
}

func (g *Registry) check(ctx context.Context, subject, schema string) (sr.CheckCompatibilityResult, error) {
	return g.cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), subject, -1, sr.Schema{Schema: schema, Type: sr.TypeAvro})
}

// writer returns the Avro schema of an id, fetched once.
func (g *Registry) writer(ctx context.Context, id int) (avro.Schema, error) {
	g.mu.Lock()
	s, ok := g.byID[id]
	g.mu.Unlock()
	if ok {
		return s, nil
	}
	got, err := g.cl.SchemaByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("schema id %d: %w", id, err)
	}
	parsed, err := avro.Parse(got.Schema)
	if err != nil {
		return nil, fmt.Errorf("schema id %d does not parse: %w", id, err)
	}
	g.mu.Lock()
	g.byID[id] = parsed
	g.mu.Unlock()
	return parsed, nil
}

// avroValue decodes a Confluent Avro value b of schema id (its header
// included) with the writer's schema.
func (g *Registry) avroValue(ctx context.Context, id int, b []byte) (any, error) {
	sch, err := g.writer(ctx, id)
	if err != nil {
		return nil, err
	}
	var v any
	if err := avro.Unmarshal(sch, b[5:], &v); err != nil {
		return nil, fmt.Errorf("not Avro of schema id %d: %w", id, err)
	}
	return v, nil
}

// value decodes b as decode reads it, to a Go value whose fields a search
// compares: Avro through the registry (records as maps), or JSON (numbers
// as json.Number, redacted as the pages show it). ok is false for a value
// that is neither.
func value(ctx context.Context, g *Registry, b []byte) (v any, ok bool) {
	switch {
	case len(b) >= 5 && b[0] == 0:
		if g == nil {
			return nil, false
		}
		v, err := g.avroValue(ctx, int(binary.BigEndian.Uint32(b[1:5])), b)
		return v, err == nil
	case len(b) > 0 && json.Valid(b):
		b, _ = redact.JSON(b)
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		return v, dec.Decode(&v) == nil
	}
	return nil, false
}

// Decoded is a message value as the browser shows it.
type Decoded struct {
	Format   string `json:"format"` // avro, json, text, hex, empty
	SchemaID int    `json:"schema_id,omitempty"`
	Text     string `json:"text"` // JSON (indented) for avro and json, else the text or hex
	Error    string `json:"error,omitempty"`
}

// decode shows a value: Avro in the Confluent wire format through the
// registry (with the writer's schema id), JSON, text, or hex.
func decode(ctx context.Context, g *Registry, b []byte) Decoded {
	switch {
	case len(b) == 0:
		return Decoded{Format: "empty"}
	case len(b) >= 5 && b[0] == 0:
		id := int(binary.BigEndian.Uint32(b[1:5]))
		d := Decoded{Format: "avro", SchemaID: id}
		if g == nil {
			d.Format, d.Text, d.Error = "hex", hex.Dump(b), "Avro, but no schema registry is connected"
			return d
		}
		v, err := g.avroValue(ctx, id, b)
		if err != nil {
			d.Format, d.Text, d.Error = "hex", hex.Dump(b), err.Error()
			return d
		}
		j, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			d.Text = fmt.Sprint(v)
		} else {
			d.Text = string(j)
		}
		return d
	case json.Valid(b):
		// Connect's config topic holds passwords: no page shows them.
		b, _ = redact.JSON(b)
		var buf bytes.Buffer
		if err := json.Indent(&buf, b, "", "  "); err == nil {
			return Decoded{Format: "json", Text: buf.String()}
		}
	case utf8.Valid(b) && !strings.ContainsRune(string(b), 0):
		return Decoded{Format: "text", Text: string(b)}
	}
	return Decoded{Format: "hex", Text: hex.Dump(b)}
}
