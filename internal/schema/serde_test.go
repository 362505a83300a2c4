package schema_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/schema/schematest"
	"github.com/userstream/userstream/internal/user"
)

// fakeRegistry serves srfake over httptest and counts schema-by-id look-ups.
type fakeRegistry struct {
	reg   *srfake.Registry
	srv   *httptest.Server
	byID  sync.Map // path -> *atomic.Int64
	total atomic.Int64
}

func newFakeRegistry(t testing.TB) *fakeRegistry {
	t.Helper()
	f := &fakeRegistry{reg: srfake.NewRegistry()}
	h := f.reg.Handler()
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/schemas/ids/") {
			v, _ := f.byID.LoadOrStore(r.URL.Path, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			f.total.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRegistry) lookups(id int) int64 {
	v, ok := f.byID.Load(fmt.Sprintf("/schemas/ids/%d", id))
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

func headerID(t testing.TB, b []byte) int {
	t.Helper()
	if len(b) < 5 || b[0] != 0 {
		t.Fatalf("message %x does not start with magic byte 0 and a 4-byte id", b)
	}
	return int(binary.BigEndian.Uint32(b[1:5]))
}

func TestRoundTripEmbeddedRegistry(t *testing.T) {
	reg := schematest.StartRegistry(t, t.TempDir())
	cl := schematest.NewClient(t, reg.URL())
	s := schematest.NewSerde(t, cl)
	if s.ID() <= 0 || s.Version() != 1 || s.Subject() != "users_created-value" {
		t.Fatalf("serde id=%d version=%d subject=%q, want a positive id, version 1, users_created-value", s.ID(), s.Version(), s.Subject())
	}

	// The registry serves under the subject exactly the schema we embed.
	got, err := cl.SchemaByVersion(t.Context(), schema.Subject, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != s.ID() {
		t.Fatalf("registry has id %d for %s v1, serde uses %d", got.ID, schema.Subject, s.ID())
	}
	regSchema, err := avro.Parse(got.Schema.Schema)
	if err != nil {
		t.Fatal(err)
	}
	if regSchema.Fingerprint() != s.Schema().Fingerprint() {
		t.Fatalf("registered schema differs from the serde's")
	}

	zero := schematest.Sample(2)
	zero.Nat, zero.RunID, zero.IngestedAt, zero.Gender = "", "", time.Time{}, ""
	tests := []struct {
		name string
		rec  user.Record
	}{
		{"full record", schematest.Sample(1)},
		{"optional fields empty", zero},
		{"original-shape numbers as text", user.Record{ID: "00000000-0000-4000-8000-000000000001", FirstName: "Ola", LastName: "Nordmann", PostCode: "0150", Email: "ola@example.com", Username: "a", IngestedAt: time.Unix(0, 0).UTC()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := s.Encode(tt.rec)
			if err != nil {
				t.Fatal(err)
			}
			if id := headerID(t, b); id != s.ID() {
				t.Fatalf("message carries schema id %d, want %d", id, s.ID())
			}
			// The registry knows the id the message carries.
			if _, err := cl.SchemaByID(t.Context(), headerID(t, b)); err != nil {
				t.Fatalf("registry does not know the id in the message: %v", err)
			}
			// A reader that is not the writer decodes it.
			reader := schematest.NewSerde(t, schematest.NewClient(t, reg.URL()), schema.WithoutRegistration())
			dec, err := reader.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if want := schematest.WantRecord(tt.rec); dec != want {
				t.Fatalf("round trip:\n got %+v\nwant %+v", dec, want)
			}
		})
	}
}

func TestNewSerdeIsIdempotent(t *testing.T) {
	reg := schematest.StartRegistry(t, "")
	cl := schematest.NewClient(t, reg.URL())
	a := schematest.NewSerde(t, cl)
	b := schematest.NewSerde(t, cl)
	if a.ID() != b.ID() || b.Version() != 1 {
		t.Fatalf("second registration: id %d version %d, want id %d version 1", b.ID(), b.Version(), a.ID())
	}
	versions, err := cl.SubjectVersions(t.Context(), schema.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 1 {
		t.Fatalf("subject has versions %v, want just [1]", versions)
	}
}

func TestDecodeJSONFallback(t *testing.T) {
	s := schematest.NewSerde(t, schematest.NewClient(t, newFakeRegistry(t).srv.URL))
	ours, err := user.JSON{}.Encode(schematest.Sample(3))
	if err != nil {
		t.Fatal(err)
	}
	original := []byte(`{"id": "5a7d0b8e-2c4f-4f6e-9b1a-3d2e1f0a9c8b", "first_name": "Lily", "last_name": "Walker",
		"gender": "female", "address": "7214 Queen Street, Hamilton, Waikato, New Zealand", "post_code": 64125,
		"email": "lily.walker@example.com", "username": "orangebear522", "dob": "1961-04-03T11:04:16.651Z",
		"registered_date": "2016-01-18T05:26:37.108Z", "phone": "(120)-737-5436",
		"picture": "https://randomuser.me/api/portraits/med/women/6.jpg"}`)

	tests := []struct {
		name  string
		in    []byte
		check func(t *testing.T, r user.Record)
	}{
		{"our JSON", ours, func(t *testing.T, r user.Record) {
			if r != schematest.Sample(3) {
				t.Fatalf("got %+v, want %+v", r, schematest.Sample(3))
			}
		}},
		{"original pipeline JSON", original, func(t *testing.T, r user.Record) {
			if r.PostCode != "64125" || r.Nat != "" || r.FirstName != "Lily" || r.ID != "5a7d0b8e-2c4f-4f6e-9b1a-3d2e1f0a9c8b" {
				t.Fatalf("got %+v", r)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.Decode(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
		})
	}

	for _, bad := range []string{"", "garbage", "[1,2]", `{"id": "x"} trailing`} {
		_, err := s.Decode([]byte(bad))
		if !errors.Is(err, schema.ErrNotAvro) {
			t.Errorf("Decode(%q) = %v, want ErrNotAvro", bad, err)
		}
	}
}

// TestEvolution registers v2 (v1 plus an optional field with a default)
// and reads v1 and v2 messages side by side.
func TestEvolution(t *testing.T) {
	reg := schematest.StartRegistry(t, t.TempDir())
	cl := schematest.NewClient(t, reg.URL())
	v1 := schematest.NewSerde(t, cl)
	v2text := schematest.V2Schema(t)
	v2 := schematest.NewSerde(t, cl, schema.WithSchema(v2text))
	if v2.Version() != 2 || v2.ID() == v1.ID() {
		t.Fatalf("v2 registered as version %d id %d (v1 id %d), want version 2 and a new id", v2.Version(), v2.ID(), v1.ID())
	}

	old, err := v1.Encode(schematest.Sample(10))
	if err != nil {
		t.Fatal(err)
	}
	// A v2 message whose new field carries a value, as a newer producer
	// with a middle name in its record would write it.
	newer := v2Message(t, v2text, v2.ID(), schematest.Sample(11), "Marie")
	v2s, err := avro.Parse(v2text)
	if err != nil {
		t.Fatal(err)
	}
	fromV2, err := v2.Encode(schematest.Sample(12))
	if err != nil {
		t.Fatal(err)
	}
	if headerID(t, fromV2) != v2.ID() {
		t.Fatalf("v2 serde wrote id %d, want %d", headerID(t, fromV2), v2.ID())
	}

	// A fresh reader with the latest schema (as a restarted stream would be).
	latest := schematest.NewSerde(t, schematest.NewClient(t, reg.URL()), schema.WithSchema(v2text), schema.WithoutRegistration())
	// And a reader still on v1 (a stream not yet upgraded).
	older := schematest.NewSerde(t, schematest.NewClient(t, reg.URL()), schema.WithoutRegistration())
	for _, rd := range []struct {
		name string
		s    *schema.Serde
	}{{"latest reader", latest}, {"v1 reader", older}} {
		for _, m := range []struct {
			name string
			msg  []byte
			want user.Record
		}{
			{"v1 message", old, schematest.WantRecord(schematest.Sample(10))},
			{"v2 message with middle_name", newer, schematest.WantRecord(schematest.Sample(11))},
			{"v2 message from serde", fromV2, schematest.WantRecord(schematest.Sample(12))},
		} {
			got, err := rd.s.Decode(m.msg)
			if err != nil {
				t.Fatalf("%s, %s: %v", rd.name, m.name, err)
			}
			if got != m.want {
				t.Fatalf("%s, %s:\n got %+v\nwant %+v", rd.name, m.name, got, m.want)
			}
		}
	}

	// The v1 message read with the v2 schema gets the default (null) for
	// the new field; the v2 message keeps its value.
	var v2view struct {
		ID         string  `avro:"id"`
		MiddleName *string `avro:"middle_name"`
	}
	res, err := avro.NewSchemaCompatibility().Resolve(v2s, v1.Schema())
	if err != nil {
		t.Fatal(err)
	}
	if err := avro.Unmarshal(res, old[5:], &v2view); err != nil || v2view.MiddleName != nil || v2view.ID != schematest.Sample(10).ID {
		t.Fatalf("v1 message through v2 schema: %+v, %v; want middle_name null", v2view, err)
	}
	if err := avro.Unmarshal(v2s, newer[5:], &v2view); err != nil || v2view.MiddleName == nil || *v2view.MiddleName != "Marie" {
		t.Fatalf("v2 message: %+v, %v; want middle_name Marie", v2view, err)
	}
}

// TestIncompatibleChangeRejectedLocally proves that the local check, not
// the registry, stops an incompatible schema: srfake accepts each of these
// schemas when they are registered directly.
func TestIncompatibleChangeRejectedLocally(t *testing.T) {
	tests := []struct {
		name      string
		schema    func(t testing.TB) string
		wantField string
	}{
		{"new required field without default", func(t testing.TB) string {
			return schematest.WithField(t, "middle_name", map[string]any{"name": "middle_name", "type": "string"})
		}, `field "middle_name" is new and has no default`},
		{"type change string to long", func(t testing.TB) string {
			return schematest.WithField(t, "post_code", map[string]any{"name": "post_code", "type": "long"})
		}, `field "post_code" changed from string to long`},
		{"uuid id to int", func(t testing.TB) string {
			return schematest.WithField(t, "id", map[string]any{"name": "id", "type": "int"})
		}, `field "id" changed from string/uuid to int`},
		{"record renamed", func(t testing.TB) string {
			return strings.Replace(schema.UserSchema(), `"name": "User"`, `"name": "Person"`, 1)
		}, "names do not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeRegistry(t)
			cl := schematest.NewClient(t, fake.srv.URL)
			v1 := schematest.NewSerde(t, cl)
			bad := tt.schema(t)

			_, err := schema.NewSerde(t.Context(), cl, schema.WithSchema(bad))
			if !errors.Is(err, schema.ErrIncompatible) {
				t.Fatalf("NewSerde(incompatible) = %v, want ErrIncompatible", err)
			}
			msg := err.Error()
			for _, want := range []string{"schema for users_created-value is not backward compatible with version 1", tt.wantField} {
				if !strings.Contains(msg, want) {
					t.Fatalf("error %q does not say %q", msg, want)
				}
			}
			versions, err := cl.SubjectVersions(t.Context(), schema.Subject)
			if err != nil || len(versions) != 1 {
				t.Fatalf("after the rejection the subject has versions %v (%v), want [1]", versions, err)
			}

			// The registry itself would have taken it.
			ss, err := cl.CreateSchema(t.Context(), schema.Subject, sr.Schema{Schema: bad, Type: sr.TypeAvro})
			if err != nil || ss.Version != 2 || ss.ID == v1.ID() {
				t.Fatalf("registry refused the schema itself (%+v, %v): the test no longer proves the local check", ss, err)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	fake := newFakeRegistry(t)
	s := schematest.NewSerde(t, schematest.NewClient(t, fake.srv.URL))
	good, err := s.Encode(schematest.Sample(20))
	if err != nil {
		t.Fatal(err)
	}
	unknown := append([]byte{0, 0, 0, 3, 231}, good[5:]...) // id 999
	tests := []struct {
		name string
		msg  []byte
		want error
		says string
	}{
		{"magic byte only", []byte{0}, schema.ErrTruncated, "1 bytes"},
		{"header cut", []byte{0, 0, 0}, schema.ErrTruncated, "3 bytes"},
		{"header without body", good[:5], schema.ErrTruncated, "schema id"},
		{"body cut in half", good[:len(good)/2], schema.ErrTruncated, "ends early"},
		{"unknown schema id", unknown, schema.ErrUnknownSchema, "unknown schema id 999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Decode(tt.msg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("error %q does not say %q", err, tt.says)
			}
		})
	}
}

func TestUnknownIDIsRetried(t *testing.T) {
	fake := newFakeRegistry(t)
	cl := schematest.NewClient(t, fake.srv.URL)
	s := schematest.NewSerde(t, cl)
	// A message written with a schema id the registry does not have yet
	// (as when a reader races a producer's registration): the failure must
	// not be cached.
	next := s.ID() + 1
	msg := v2Message(t, schematest.V2Schema(t), next, schematest.Sample(21), "Anne")
	if _, err := s.Decode(msg); !errors.Is(err, schema.ErrUnknownSchema) {
		t.Fatalf("Decode = %v, want ErrUnknownSchema", err)
	}
	if v2 := schematest.NewSerde(t, cl, schema.WithSchema(schematest.V2Schema(t))); v2.ID() != next {
		t.Fatalf("v2 registered with id %d, the test assumed %d", v2.ID(), next)
	}
	got, err := s.Decode(msg)
	if err != nil {
		t.Fatalf("decode after registration: %v", err)
	}
	if got != schematest.WantRecord(schematest.Sample(21)) {
		t.Fatalf("got %+v", got)
	}
}

// v2Message writes rec with the v2 schema, its middle_name set, framed
// with schema id id.
func v2Message(t testing.TB, v2text string, id int, rec user.Record, middle string) []byte {
	t.Helper()
	v2s, err := avro.Parse(v2text)
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{
		"id": rec.ID, "first_name": rec.FirstName, "last_name": rec.LastName, "gender": rec.Gender,
		"address": rec.Address, "post_code": rec.PostCode, "email": rec.Email, "username": rec.Username,
		"dob": rec.DOB, "registered_date": rec.RegisteredDate, "phone": rec.Phone, "picture": rec.Picture,
		"nat": rec.Nat, "ingested_at": rec.IngestedAt, "run_id": rec.RunID, "middle_name": middle,
	}
	b, err := avro.Marshal(v2s, body)
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(id)), b...)
}

func TestRegistryUnavailable(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL
	down.Close()

	cl, err := sr.NewClient(sr.URLs(strings.Replace(url, "http://", "http://alice:s3cret-pw@", 1)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = schema.NewSerde(t.Context(), cl)
	if !errors.Is(err, schema.ErrRegistryUnavailable) {
		t.Fatalf("NewSerde against a closed port = %v, want ErrRegistryUnavailable", err)
	}
	if msg := err.Error(); !strings.Contains(msg, strings.TrimPrefix(url, "http://")) || strings.Contains(msg, "s3cret-pw") {
		t.Fatalf("error %q should name the registry address and hide the password", msg)
	}

	// Decode: the registry goes away after the serde started.
	fake := newFakeRegistry(t)
	writer := schematest.NewSerde(t, schematest.NewClient(t, fake.srv.URL), schema.WithSchema(schematest.V2Schema(t)))
	msg, err := writer.Encode(schematest.Sample(30))
	if err != nil {
		t.Fatal(err)
	}
	reader := schematest.NewSerde(t, schematest.NewClient(t, fake.srv.URL), schema.WithoutRegistration())
	fake.srv.Close()
	if _, err := reader.Decode(msg); !errors.Is(err, schema.ErrRegistryUnavailable) {
		t.Fatalf("Decode with the registry down = %v, want ErrRegistryUnavailable", err)
	}
}

func TestWithoutRegistration(t *testing.T) {
	fake := newFakeRegistry(t)
	cl := schematest.NewClient(t, fake.srv.URL)
	s := schematest.NewSerde(t, cl, schema.WithoutRegistration())
	if _, err := s.Encode(schematest.Sample(40)); !errors.Is(err, schema.ErrNotRegistered) {
		t.Fatalf("Encode without a registered schema = %v, want ErrNotRegistered", err)
	}
	if fake.reg.SubjectExists(schema.Subject) {
		t.Fatal("WithoutRegistration registered the subject")
	}
	w := schematest.NewSerde(t, cl)
	s = schematest.NewSerde(t, cl, schema.WithoutRegistration())
	if s.ID() != w.ID() {
		t.Fatalf("look-up found id %d, want %d", s.ID(), w.ID())
	}
}

// TestConcurrentDecode decodes messages of two schema ids from many
// goroutines: each id is fetched from the registry once (run with -race).
func TestConcurrentDecode(t *testing.T) {
	fake := newFakeRegistry(t)
	cl := schematest.NewClient(t, fake.srv.URL)
	v1 := schematest.NewSerde(t, cl)
	v2 := schematest.NewSerde(t, cl, schema.WithSchema(schematest.V2Schema(t)))
	var msgs [][]byte
	var want []user.Record
	for i := range 64 {
		w := v1
		if i%2 == 1 {
			w = v2
		}
		b, err := w.Encode(schematest.Sample(i))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, b)
		want = append(want, schematest.WantRecord(schematest.Sample(i)))
	}
	// A reader on a third schema (v2 with a different doc) knows neither id.
	reader := schematest.NewSerde(t, schematest.NewClient(t, fake.srv.URL), schema.WithoutRegistration(),
		schema.WithSchema(strings.Replace(schematest.V2Schema(t), "One user", "A user", 1)))
	before1, before2 := fake.lookups(v1.ID()), fake.lookups(v2.ID())

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for k := range msgs {
				i := (k + g*7) % len(msgs)
				got, err := reader.Decode(msgs[i])
				if err != nil {
					errs <- err
					return
				}
				if got != want[i] {
					errs <- fmt.Errorf("message %d: got %+v, want %+v", i, got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n1, n2 := fake.lookups(v1.ID())-before1, fake.lookups(v2.ID())-before2; n1 != 1 || n2 != 1 {
		t.Fatalf("registry look-ups during decoding: id %d %d times, id %d %d times; want once each", v1.ID(), n1, v2.ID(), n2)
	}
}

func TestCheckBackward(t *testing.T) {
	rec := func(fields string) avro.Schema {
		t.Helper()
		s, err := avro.ParseWithCache(`{"type":"record","name":"R","fields":[`+fields+`]}`, "", &avro.SchemaCache{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := `{"name":"a","type":"string"},{"name":"n","type":"int"}`
	tests := []struct {
		name string
		next string
		ok   bool
		says string
	}{
		{"same", base, true, ""},
		{"optional field added", base + `,{"name":"b","type":["null","string"],"default":null}`, true, ""},
		{"field removed", `{"name":"a","type":"string"}`, true, ""},
		{"int widened to long", `{"name":"a","type":"string"},{"name":"n","type":"long"}`, true, ""},
		{"renamed with alias", `{"name":"a","type":"string"},{"name":"count","aliases":["n"],"type":"int"}`, true, ""},
		{"required field added", base + `,{"name":"b","type":"string"}`, false, `field "b" is new and has no default`},
		{"int changed to string", `{"name":"a","type":"string"},{"name":"n","type":"string"}`, false, `field "n" changed from int to string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := schema.CheckBackward(rec(tt.next), rec(base))
			if tt.ok {
				if err != nil {
					t.Fatalf("CheckBackward = %v, want compatible", err)
				}
				return
			}
			if !errors.Is(err, schema.ErrIncompatible) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("CheckBackward = %v, want ErrIncompatible saying %q", err, tt.says)
			}
		})
	}
}

func TestOtherSubject(t *testing.T) {
	fake := newFakeRegistry(t)
	cl := schematest.NewClient(t, fake.srv.URL)
	s := schematest.NewSerde(t, cl, schema.WithSubject("users_replay-value"), schema.WithLookupTimeout(time.Second))
	if s.Subject() != "users_replay-value" || !fake.reg.SubjectExists("users_replay-value") || fake.reg.SubjectExists(schema.Subject) {
		t.Fatalf("WithSubject: serde subject %q; registry has it: %v, has the default: %v",
			s.Subject(), fake.reg.SubjectExists("users_replay-value"), fake.reg.SubjectExists(schema.Subject))
	}
}

// FuzzSerdeDecode feeds arbitrary message values to the stream's decoder:
// the Confluent wire format (magic byte, schema id, Avro body) and, for
// anything else, user JSON. It must never panic; every failure must match
// one of the package's errors or be a JSON decode error; and a value that
// decodes must survive our own encoding unchanged.
func FuzzSerdeDecode(f *testing.F) {
	reg := schematest.StartRegistry(f, "")
	s := schematest.NewSerde(f, schematest.NewClient(f, reg.URL()))
	for i := range 3 {
		b, err := s.Encode(schematest.Sample(i))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(append(b, 0))
	}
	j, _ := user.JSON{}.Encode(schematest.Sample(7))
	f.Add(j)
	f.Add([]byte{0, 0, 0, 0, 9, 2})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := s.Decode(b)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			if len(b) > 0 && b[0] == 0 && !errors.Is(err, schema.ErrTruncated) && !errors.Is(err, schema.ErrMalformed) &&
				!errors.Is(err, schema.ErrUnknownSchema) && !errors.Is(err, schema.ErrNotAvro) {
				t.Fatalf("wire-format value: error %v matches none of the package's errors", err)
			}
			return
		}
		again, err := s.Encode(r)
		if err != nil {
			t.Fatalf("encode of a decoded record %+v: %v", r, err)
		}
		r2, err := s.Decode(again)
		if err != nil {
			t.Fatalf("decode of our own encoding: %v", err)
		}
		// Avro keeps ingested_at in milliseconds (JSON input may carry more).
		if !r.IngestedAt.Truncate(time.Millisecond).Equal(r2.IngestedAt) {
			t.Fatalf("ingested_at changed: %v -> %v", r.IngestedAt, r2.IngestedAt)
		}
		r.IngestedAt, r2.IngestedAt = time.Time{}, time.Time{}
		if r != r2 {
			t.Fatalf("round trip changed the record:\nfirst  %+v\nsecond %+v", r, r2)
		}
	})
}
