package cassandratest

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/google/uuid"
)

// frame builds one v4 request frame.
func frame(stream int16, op byte, body []byte) []byte {
	b := []byte{protoV4, 0, 0, 0, op, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(stream))
	binary.BigEndian.PutUint32(b[5:], uint32(len(body)))
	return append(b, body...)
}

func longString(s string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(s)))
	return append(b, s...)
}

func startupBody() []byte {
	w := &writer{}
	w.short(1)
	w.string("CQL_VERSION")
	w.string("3.0.0")
	return w.b
}

func queryBody(q string) []byte {
	b := longString(q)
	return append(b, 0x00, 0x01, 0x00) // consistency ONE, no flags
}

// FuzzFrames feeds arbitrary bytes to a connection of the double, as a
// client's stream of frames. The double must never panic or hang, and what
// it writes back must be a sequence of well-formed response frames.
func FuzzFrames(f *testing.F) {
	startup := frame(1, opStartup, startupBody())
	f.Add(startup)
	f.Add(frame(0, opOptions, nil))
	f.Add(append(startup, frame(2, opQuery, queryBody(
		"CREATE KEYSPACE IF NOT EXISTS ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"))...))
	f.Add(append(startup, frame(2, opQuery, queryBody(
		"CREATE TABLE IF NOT EXISTS ks.t (id uuid PRIMARY KEY, name text)"))...))
	f.Add(append(startup, frame(3, opPrepare, longString("INSERT INTO ks.t (id, name) VALUES (?, ?)"))...))
	f.Add(append(startup, frame(4, opQuery, queryBody("SELECT * FROM ks.t WHERE id = 6f0c7a52-3c1e-4d55-9a5b-2f4a7b1c9e10"))...))
	f.Add(append(startup, frame(5, opBatch, []byte{0, 0, 1, 0})...))
	f.Add(frame(1, opStartup, startupBody())[:12])
	f.Add([]byte{0x03, 0, 0, 1, opStartup, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		d := &Double{release: "4.1.5", hostID: uuid.New(), conns: map[*conn]struct{}{},
			keyspaces: map[string]*keyspace{}, prepared: map[string]*prepared{},
			schemaVersion: uuid.New(), injected: map[Fault]int{}}
		client, server := net.Pipe()
		c := &conn{d: d, nc: server}
		d.conns[c] = struct{}{}
		done := make(chan struct{})
		go func() { defer close(done); c.serve() }()
		var out bytes.Buffer
		read := make(chan struct{})
		go func() { defer close(read); _, _ = io.Copy(&out, client) }()
		go func() { _, _ = client.Write(in); _ = client.Close() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("the double hung on %d bytes of input", len(in))
		}
		server.Close()
		<-read
		b := out.Bytes()
		for len(b) > 0 {
			if len(b) < headerLen {
				t.Fatalf("response ends in a partial header: % x", b)
			}
			if b[0]&respFlag == 0 {
				t.Fatalf("response frame without the response flag: % x", b[:headerLen])
			}
			n := int(binary.BigEndian.Uint32(b[5:9]))
			if n > len(b)-headerLen {
				t.Fatalf("response frame says %d body bytes, %d follow", n, len(b)-headerLen)
			}
			b = b[headerLen+n:]
		}
	})
}
