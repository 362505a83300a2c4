package cassandratest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Protocol constants of the CQL native protocol, version 4, as far as the
// double uses them.
const (
	protoV4   = 0x04
	respFlag  = 0x80
	headerLen = 9
	maxBody   = 64 << 20

	opError        = 0x00
	opStartup      = 0x01
	opReady        = 0x02
	opAuthenticate = 0x03
	opOptions      = 0x05
	opSupported    = 0x06
	opQuery        = 0x07
	opResult       = 0x08
	opPrepare      = 0x09
	opExecute      = 0x0A
	opRegister     = 0x0B
	opEvent        = 0x0C
	opBatch        = 0x0D
	opAuthResponse = 0x0F
	opAuthSuccess  = 0x10

	resultVoid         = 1
	resultRows         = 2
	resultSetKeyspace  = 3
	resultPrepared     = 4
	resultSchemaChange = 5

	// Error codes (native protocol spec, section 9).
	codeServer         = 0x0000
	codeProtocol       = 0x000A
	codeBadCredentials = 0x0100
	codeUnavailable    = 0x1000
	codeWriteTimeout   = 0x1100
	codeSyntax         = 0x2000
	codeInvalid        = 0x2200
	codeUnprepared     = 0x2500

	// Query parameter flags (v4: one byte).
	qfValues        = 0x01
	qfSkipMetadata  = 0x02
	qfPageSize      = 0x04
	qfPagingState   = 0x08
	qfSerialCons    = 0x10
	qfDefaultTS     = 0x20
	qfNamedValues   = 0x40
	rowsGlobalSpec  = 0x01
	rowsNoMetadata  = 0x04
	consistencyOne  = 0x0001
	unsetValueLen   = -2
	nullValueLen    = -1
	passwordAuthCls = "org.apache.cassandra.auth.PasswordAuthenticator"
)

// header is a frame header.
type header struct {
	version byte
	flags   byte
	stream  int16
	op      byte
	length  int32
}

func readHeader(r io.Reader) (header, error) {
	var b [headerLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return header{}, err
	}
	h := header{
		version: b[0],
		flags:   b[1],
		stream:  int16(binary.BigEndian.Uint16(b[2:4])),
		op:      b[4],
		length:  int32(binary.BigEndian.Uint32(b[5:9])),
	}
	if h.length < 0 || h.length > maxBody {
		return h, fmt.Errorf("frame body length %d out of range", h.length)
	}
	return h, nil
}

// errShort is returned when a request body ends early.
var errShort = errors.New("request body too short")

// reader decodes the protocol's notations from a request body.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = errShort
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) short() uint16 {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func (r *reader) int() int32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(b))
}

func (r *reader) long() int64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

func (r *reader) string() string     { return string(r.take(int(r.short()))) }
func (r *reader) longString() string { return string(r.take(int(r.int()))) }
func (r *reader) shortBytes() []byte { return r.take(int(r.short())) }

// value reads a [value]: bytes, or null (nil, false), or unset (nil, true).
func (r *reader) value() (v []byte, unset bool) {
	n := r.int()
	switch {
	case r.err != nil:
		return nil, false
	case n == nullValueLen:
		return nil, false
	case n == unsetValueLen:
		return nil, true
	case n < 0:
		r.err = fmt.Errorf("invalid value length %d", n)
		return nil, false
	}
	b := r.take(int(n))
	if b == nil {
		return nil, false
	}
	return append([]byte{}, b...), false
}

func (r *reader) stringMap() map[string]string {
	n := int(r.short())
	m := make(map[string]string, n)
	for i := 0; i < n && r.err == nil; i++ {
		k := r.string()
		m[k] = r.string()
	}
	return m
}

func (r *reader) stringList() []string {
	n := int(r.short())
	l := make([]string, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		l = append(l, r.string())
	}
	return l
}

// params are the <query_parameters> of QUERY and EXECUTE.
type params struct {
	consistency uint16
	values      [][]byte
	unset       []bool
	skipMeta    bool
	pageSize    int32
}

func (r *reader) queryParams() params {
	var p params
	p.consistency = r.short()
	flags := r.byte()
	if flags&qfNamedValues != 0 {
		r.err = errors.New("named values are not supported by the double")
		return p
	}
	if flags&qfValues != 0 {
		n := int(r.short())
		for i := 0; i < n && r.err == nil; i++ {
			v, unset := r.value()
			p.values = append(p.values, v)
			p.unset = append(p.unset, unset)
		}
	}
	p.skipMeta = flags&qfSkipMetadata != 0
	if flags&qfPageSize != 0 {
		p.pageSize = r.int()
	}
	if flags&qfPagingState != 0 {
		r.value()
	}
	if flags&qfSerialCons != 0 {
		r.short()
	}
	if flags&qfDefaultTS != 0 {
		r.long()
	}
	return p
}

// writer builds a response frame.
type writer struct{ b []byte }

func newResponse(version byte, stream int16, op byte) *writer {
	w := &writer{b: make([]byte, headerLen, 256)}
	w.b[0] = version | respFlag
	binary.BigEndian.PutUint16(w.b[2:4], uint16(stream))
	w.b[4] = op
	return w
}

func (w *writer) finish() []byte {
	binary.BigEndian.PutUint32(w.b[5:9], uint32(len(w.b)-headerLen))
	return w.b
}

func (w *writer) byte(v byte)    { w.b = append(w.b, v) }
func (w *writer) short(v uint16) { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *writer) int(v int32)    { w.b = binary.BigEndian.AppendUint32(w.b, uint32(v)) }
func (w *writer) string(s string) {
	w.short(uint16(len(s)))
	w.b = append(w.b, s...)
}
func (w *writer) shortBytes(b []byte) {
	w.short(uint16(len(b)))
	w.b = append(w.b, b...)
}
func (w *writer) bytes(b []byte) {
	if b == nil {
		w.int(nullValueLen)
		return
	}
	w.int(int32(len(b)))
	w.b = append(w.b, b...)
}
func (w *writer) stringList(l []string) {
	w.short(uint16(len(l)))
	for _, s := range l {
		w.string(s)
	}
}
func (w *writer) stringMultiMap(m map[string][]string, keys []string) {
	w.short(uint16(len(keys)))
	for _, k := range keys {
		w.string(k)
		w.stringList(m[k])
	}
}

// cqlError is an ERROR response: a code, a message, and the code's extra
// body (already encoded).
type cqlError struct {
	code  int32
	msg   string
	extra func(w *writer)
}

func (e *cqlError) Error() string { return fmt.Sprintf("cql error 0x%04x: %s", e.code, e.msg) }

func errSyntax(format string, a ...any) *cqlError {
	return &cqlError{code: codeSyntax, msg: fmt.Sprintf(format, a...)}
}

func errInvalid(format string, a ...any) *cqlError {
	return &cqlError{code: codeInvalid, msg: fmt.Sprintf(format, a...)}
}

func errProtocol(format string, a ...any) *cqlError {
	return &cqlError{code: codeProtocol, msg: fmt.Sprintf(format, a...)}
}

func writeError(version byte, stream int16, e *cqlError) []byte {
	w := newResponse(version, stream, opError)
	w.int(e.code)
	w.string(e.msg)
	if e.extra != nil {
		e.extra(w)
	}
	return w.finish()
}
