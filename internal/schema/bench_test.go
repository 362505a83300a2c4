package schema_test

import (
	"testing"

	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/schema/schematest"
	"github.com/userstream/userstream/internal/user"
)

// Benchmarks of the cost per record of each codec the producer and stream
// can use. The registry is only called while setting up (schemas are cached
// by id), so these measure encoding and decoding alone.
//
//	go test -run '^$' -bench . -benchmem -benchtime 2s ./internal/schema/

func benchCodecs(b *testing.B) (avroV1, avroV2 *schema.Serde) {
	fake := newFakeRegistry(b)
	cl := schematest.NewClient(b, fake.srv.URL)
	avroV1 = schematest.NewSerde(b, cl)
	avroV2 = schematest.NewSerde(b, cl, schema.WithSchema(schematest.V2Schema(b)))
	return avroV1, avroV2
}

func BenchmarkEncode(b *testing.B) {
	v1, _ := benchCodecs(b)
	rec := schematest.Sample(1)
	for _, c := range []struct {
		name string
		enc  schema.Encoder
	}{{"avro", v1}, {"json", user.JSON{}}} {
		b.Run(c.name, func(b *testing.B) {
			out, err := c.enc.Encode(rec)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.enc.Encode(rec); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(out)), "msg-bytes")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	v1, v2 := benchCodecs(b)
	rec := schematest.Sample(1)
	avroMsg, err := v1.Encode(rec)
	if err != nil {
		b.Fatal(err)
	}
	jsonMsg, err := user.JSON{}.Encode(rec)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		dec  schema.Decoder
		msg  []byte
	}{
		{"avro", v1, avroMsg},                   // writer schema = reader schema
		{"avro-resolved-v1-to-v2", v2, avroMsg}, // an older message read by a newer reader
		{"json", user.JSON{}, jsonMsg},
		{"json-via-serde", v1, jsonMsg}, // the stream's fallback path
	} {
		b.Run(c.name, func(b *testing.B) {
			got, err := c.dec.Decode(c.msg)
			if err != nil {
				b.Fatal(err)
			}
			if got.ID != rec.ID || got.Picture != rec.Picture {
				b.Fatalf("decoded %+v", got)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.dec.Decode(c.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
