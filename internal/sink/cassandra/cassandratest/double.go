// Package cassandratest is test support, not a driver: a CQL-protocol test
// double for the cassandra sink's fault-injection tests. The sink's
// behaviour is proven on a real Apache Cassandra 5.0 node
// (internal/engines); the double is for what a real node cannot be made to
// do on cue (a scripted write timeout, an unavailable error, a dropped
// connection mid-batch).
//
// It is a TCP server on 127.0.0.1 that speaks enough of the native protocol
// (version 4) for the gocql v2 driver, keeps rows in memory, and checks
// every statement it is sent. Nothing stores data in it: it is gone when
// the test ends.
//
// It is not a database and not Cassandra. It understands CREATE KEYSPACE,
// CREATE TABLE, CREATE INDEX ... USING 'sai', USE, INSERT with bind
// markers, and SELECT by primary key, by one equality on an indexed
// column (or a full scan, or COUNT(*)), plus the system tables a driver reads at
// startup (system.local, system.peers, system_schema.keyspaces). Any other
// statement, an unknown table or column, a WHERE clause a real server would
// refuse without ALLOW FILTERING, or a value of the wrong size for its
// column is answered with a CQL syntax or invalid-query error, so a bug in
// the code under test shows up in its tests. Paging is not implemented:
// every result comes back in one page (a real node pages, and the sink's
// suite passes on both).
//
// Faults are scripted with FailNext (write timeout, unavailable, dropped
// connection) and a node outage with Stop and Restart.
package cassandratest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/google/uuid"
)

// DataCenter is the data centre the double reports in system.local.
const DataCenter = "datacenter1"

// Fault is a failure the double can be told to answer writes with.
type Fault int

const (
	// WriteTimeout answers a write with a WRITE_TIMEOUT error (0x1100), as a
	// coordinator does when too few replicas acknowledged in time.
	WriteTimeout Fault = iota + 1
	// Unavailable answers a write with an UNAVAILABLE error (0x1000), as a
	// coordinator does when too few replicas are alive.
	Unavailable
	// DropConnection closes the TCP connection when a write arrives, without
	// answering it.
	DropConnection
)

func (f Fault) String() string {
	switch f {
	case WriteTimeout:
		return "write timeout"
	case Unavailable:
		return "unavailable"
	case DropConnection:
		return "dropped connection"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// Option configures a Double.
type Option func(*Double)

// WithCredentials makes the double require PasswordAuthenticator
// authentication with this user name and password.
func WithCredentials(user, password string) Option {
	return func(d *Double) { d.user, d.password, d.auth = user, password, true }
}

// WithReleaseVersion sets the release_version the double reports (default
// "4.1.5"; from 4.0 on, drivers first try system.peers_v2, which the double
// answers as an unconfigured table so they fall back to system.peers).
func WithReleaseVersion(v string) Option { return func(d *Double) { d.release = v } }

// Double is the CQL-protocol test double. Its methods are safe for
// concurrent use.
type Double struct {
	user, password string
	auth           bool
	release        string
	hostID         uuid.UUID

	mu            sync.Mutex
	addr          string
	ln            net.Listener
	conns         map[*conn]struct{}
	closed        bool
	keyspaces     map[string]*keyspace
	prepared      map[string]*prepared
	schemaVersion uuid.UUID
	faults        []Fault
	injected      map[Fault]int
	writes        int
	wg            sync.WaitGroup
}

// Start starts a double on 127.0.0.1 with a free port.
func Start(opts ...Option) (*Double, error) {
	d := &Double{
		release:       "4.1.5",
		hostID:        uuid.New(),
		conns:         map[*conn]struct{}{},
		keyspaces:     map[string]*keyspace{},
		prepared:      map[string]*prepared{},
		schemaVersion: uuid.New(),
		injected:      map[Fault]int{},
	}
	for _, o := range opts {
		o(d)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cassandratest: listen: %w", err)
	}
	d.addr = ln.Addr().String()
	d.listen(ln)
	return d, nil
}

// Addr returns the host:port the double listens on; it stays the same
// across Stop and Restart.
func (d *Double) Addr() string { return d.addr }

func (d *Double) listen(ln net.Listener) {
	d.ln = ln
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c := &conn{d: d, nc: nc}
			d.mu.Lock()
			if d.ln != ln {
				d.mu.Unlock()
				nc.Close()
				return
			}
			d.conns[c] = struct{}{}
			d.mu.Unlock()
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				c.serve()
			}()
		}
	}()
}

// Stop simulates the node going down: it stops listening and closes every
// connection. Data, schema and prepared statements are kept.
func (d *Double) Stop() {
	d.mu.Lock()
	ln := d.ln
	d.ln = nil
	conns := d.conns
	d.conns = map[*conn]struct{}{}
	d.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for c := range conns {
		c.nc.Close()
	}
}

// Restart brings a stopped double back on the same address. It retries
// for up to five seconds while the port is still held by the system.
func (d *Double) Restart() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errors.New("cassandratest: restart of a closed double")
	}
	if d.ln != nil {
		d.mu.Unlock()
		return nil
	}
	d.mu.Unlock()
	var err error
	// Paces the retries while the old socket releases the port.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var ln net.Listener
		if ln, err = net.Listen("tcp", d.addr); err == nil {
			d.mu.Lock()
			d.listen(ln)
			d.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("cassandratest: restart on %s: %w", d.addr, err)
}

// Close stops the double for good and waits for its goroutines.
func (d *Double) Close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.Stop()
	d.wg.Wait()
}

// FailNext makes the next n writes (INSERTs, alone or in a BATCH) fail
// with the fault, after any faults already scheduled.
func (d *Double) FailNext(f Fault, n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for range n {
		d.faults = append(d.faults, f)
	}
}

// Injected returns how many writes were failed with the fault so far.
func (d *Double) Injected(f Fault) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.injected[f]
}

// Writes returns how many write requests were applied.
func (d *Double) Writes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writes
}

// Rows returns the number of rows stored in a table, or -1 if there is no
// such table.
func (d *Double) Rows(keyspace, table string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := d.keyspaces[keyspace]
	if k == nil || k.tables[table] == nil {
		return -1
	}
	return k.tables[table].count()
}

// Replication returns the replication options a keyspace was created with
// (the class fully qualified), and whether it exists.
func (d *Double) Replication(keyspace string) (map[string]string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := d.keyspaces[keyspace]
	if k == nil {
		return nil, false
	}
	m := make(map[string]string, len(k.replication))
	for a, b := range k.replication {
		m[a] = b
	}
	return m, true
}

// Columns returns the column names and CQL types of a table, in the order
// of its CREATE TABLE, or nil if there is no such table.
func (d *Double) Columns(keyspace, table string) map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := d.keyspaces[keyspace]
	if k == nil || k.tables[table] == nil {
		return nil
	}
	m := map[string]string{}
	for _, c := range k.tables[table].cols {
		m[c.name] = c.typ.String()
	}
	return m
}

// nextFault pops the next scheduled fault, if any. Callers hold d.mu.
func (d *Double) nextFault() Fault {
	if len(d.faults) == 0 {
		return 0
	}
	f := d.faults[0]
	d.faults = d.faults[1:]
	d.injected[f]++
	return f
}

// conn is one client connection.
type conn struct {
	d        *Double
	nc       net.Conn
	wmu      sync.Mutex
	ready    bool // STARTUP (and authentication) done
	keyspace string
	events   map[string]bool
}

func (c *conn) send(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(b)
	return err
}

func (c *conn) serve() {
	defer func() {
		c.nc.Close()
		c.d.mu.Lock()
		delete(c.d.conns, c)
		c.d.mu.Unlock()
	}()
	for {
		h, err := readHeader(c.nc)
		if err != nil {
			return
		}
		body := make([]byte, h.length)
		if _, err := io.ReadFull(c.nc, body); err != nil {
			return
		}
		if h.version&respFlag != 0 {
			return
		}
		if v := h.version & 0x7F; v != protoV4 {
			// As a server does for versions it does not speak: a protocol
			// error on the request's stream, in the request's version, so
			// the driver retries with a lower one.
			e := errProtocol("Invalid or unsupported protocol version (%d); supported versions are (4/v4)", v)
			if c.send(writeError(v, h.stream, e)) != nil {
				return
			}
			continue
		}
		if h.flags&0x01 != 0 {
			c.send(writeError(protoV4, h.stream, errProtocol("compression is not supported by the double")))
			return
		}
		resp, drop := c.handle(h, body)
		if drop {
			return
		}
		if c.send(resp) != nil {
			return
		}
	}
}

// handle answers one request; drop says to close the connection instead.
func (c *conn) handle(h header, body []byte) (resp []byte, drop bool) {
	r := &reader{b: body}
	fail := func(e *cqlError) ([]byte, bool) { return writeError(protoV4, h.stream, e), false }
	if h.flags&0x04 != 0 { // custom payload
		n := int(r.short())
		for i := 0; i < n; i++ {
			r.string()
			r.value()
		}
	}
	switch h.op {
	case opOptions:
		w := newResponse(protoV4, h.stream, opSupported)
		w.stringMultiMap(map[string][]string{
			"CQL_VERSION":       {"3.4.5"},
			"COMPRESSION":       {},
			"PROTOCOL_VERSIONS": {"4/v4"},
		}, []string{"COMPRESSION", "CQL_VERSION", "PROTOCOL_VERSIONS"})
		return w.finish(), false
	case opStartup:
		opts := r.stringMap()
		if r.err != nil {
			return fail(errProtocol("malformed STARTUP: %v", r.err))
		}
		if opts["CQL_VERSION"] == "" {
			return fail(errProtocol("STARTUP without CQL_VERSION"))
		}
		if opts["COMPRESSION"] != "" {
			return fail(errProtocol("unknown compression algorithm %s", opts["COMPRESSION"]))
		}
		if c.d.auth {
			w := newResponse(protoV4, h.stream, opAuthenticate)
			w.string(passwordAuthCls)
			return w.finish(), false
		}
		c.ready = true
		return newResponse(protoV4, h.stream, opReady).finish(), false
	case opAuthResponse:
		token, _ := r.value()
		parts := splitSASL(token)
		if !c.d.auth || len(parts) != 3 || parts[1] != c.d.user || parts[2] != c.d.password {
			return fail(&cqlError{code: codeBadCredentials, msg: "Provided username and/or password are incorrect"})
		}
		c.ready = true
		w := newResponse(protoV4, h.stream, opAuthSuccess)
		w.bytes(nil)
		return w.finish(), false
	}
	if !c.ready {
		return fail(errProtocol("unexpected message %d, expecting STARTUP or AUTH_RESPONSE", h.op))
	}
	switch h.op {
	case opRegister:
		c.events = map[string]bool{}
		for _, e := range r.stringList() {
			c.events[e] = true
		}
		return newResponse(protoV4, h.stream, opReady).finish(), false
	case opQuery:
		q := r.longString()
		p := r.queryParams()
		if r.err != nil {
			return fail(errProtocol("malformed QUERY: %v", r.err))
		}
		return c.execute(h.stream, func() (*prepared, *cqlError) { return c.d.prepare(q, c.keyspace) }, p, false)
	case opPrepare:
		q := r.longString()
		if r.err != nil {
			return fail(errProtocol("malformed PREPARE: %v", r.err))
		}
		c.d.mu.Lock()
		p, err := c.d.prepare(q, c.keyspace)
		if err == nil {
			c.d.prepared[string(p.id)] = p
		}
		c.d.mu.Unlock()
		if err != nil {
			return fail(err)
		}
		return writePrepared(h.stream, p), false
	case opExecute:
		id := append([]byte{}, r.shortBytes()...)
		p := r.queryParams()
		if r.err != nil {
			return fail(errProtocol("malformed EXECUTE: %v", r.err))
		}
		return c.execute(h.stream, func() (*prepared, *cqlError) {
			if ps := c.d.prepared[string(id)]; ps != nil {
				return ps, nil
			}
			return nil, &cqlError{code: codeUnprepared, msg: "Prepared query with ID " + fmt.Sprintf("%x", id) + " not found",
				extra: func(w *writer) { w.shortBytes(id) }}
		}, p, p.skipMeta)
	case opBatch:
		return c.batch(h.stream, r)
	}
	return fail(errProtocol("unknown or unexpected opcode 0x%02x", h.op))
}

func splitSASL(b []byte) []string {
	var parts []string
	start := 0
	for i, c := range b {
		if c == 0 {
			parts = append(parts, string(b[start:i]))
			start = i + 1
		}
	}
	return append(parts, string(b[start:]))
}

// execute runs one statement under the double's lock, injecting a
// scheduled fault if the statement is a write.
func (c *conn) execute(stream int16, get func() (*prepared, *cqlError), p params, skipMeta bool) ([]byte, bool) {
	d := c.d
	d.mu.Lock()
	ps, err := get()
	if err != nil {
		d.mu.Unlock()
		return writeError(protoV4, stream, err), false
	}
	if ps.write {
		if f := d.nextFault(); f != 0 {
			d.mu.Unlock()
			return faultResponse(stream, f, p.consistency, "SIMPLE")
		}
	}
	if p.unset == nil {
		p.unset = make([]bool, len(p.values))
	}
	res, err := d.run(c, ps, p.values, p.unset)
	if err == nil && ps.write {
		d.writes++
	}
	d.mu.Unlock()
	if err != nil {
		return writeError(protoV4, stream, err), false
	}
	if res.kind == resultSchemaChange {
		d.broadcastSchemaChange(c, res)
	}
	return writeResult(stream, res, skipMeta), false
}

// batch applies a BATCH atomically: every statement is checked first, and
// only then are all of them applied.
func (c *conn) batch(stream int16, r *reader) ([]byte, bool) {
	typ := r.byte()
	n := int(r.short())
	type entry struct {
		p      *prepared
		values [][]byte
		unset  []bool
	}
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	var entries []entry
	var firstErr *cqlError
	for i := 0; i < n && r.err == nil; i++ {
		var e entry
		switch kind := r.byte(); kind {
		case 0:
			q := r.longString()
			p, err := d.prepare(q, c.keyspace)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			e.p = p
		case 1:
			id := r.shortBytes()
			e.p = d.prepared[string(id)]
			if e.p == nil && firstErr == nil {
				idc := append([]byte{}, id...)
				firstErr = &cqlError{code: codeUnprepared, msg: fmt.Sprintf("Prepared query with ID %x not found", id),
					extra: func(w *writer) { w.shortBytes(idc) }}
			}
		default:
			r.err = fmt.Errorf("unknown batch statement kind %d", kind)
		}
		m := int(r.short())
		for j := 0; j < m && r.err == nil; j++ {
			v, unset := r.value()
			e.values = append(e.values, v)
			e.unset = append(e.unset, unset)
		}
		entries = append(entries, e)
	}
	consistency := r.short()
	flags := r.byte()
	if flags&qfSerialCons != 0 {
		r.short()
	}
	if flags&qfDefaultTS != 0 {
		r.long()
	}
	if r.err != nil {
		return writeError(protoV4, stream, errProtocol("malformed BATCH: %v", r.err)), false
	}
	if typ > 2 {
		return writeError(protoV4, stream, errProtocol("unknown batch type %d", typ)), false
	}
	if firstErr != nil {
		return writeError(protoV4, stream, firstErr), false
	}
	for _, e := range entries {
		if !e.p.write {
			return writeError(protoV4, stream, errInvalid("Invalid statement in batch: only UPDATE, INSERT and DELETE statements are allowed.")), false
		}
		if len(e.values) != len(e.p.binds) {
			return writeError(protoV4, stream, errInvalid("There were %d markers(?) in CQL but %d bound variables", len(e.p.binds), len(e.values))), false
		}
		for i, v := range e.values {
			if v == nil && !e.unset[i] {
				if k, _ := d.resolve(e.p.ks, e.p.table, ""); k != nil && (contains(k.partition, e.p.binds[i].name) || contains(k.clustering, e.p.binds[i].name)) {
					return writeError(protoV4, stream, errInvalid("Invalid null value in condition for column %s", e.p.binds[i].name)), false
				}
				continue
			}
			if err := e.p.binds[i].typ.check(v); v != nil && err != nil {
				return writeError(protoV4, stream, errInvalid("Invalid value for column %s: %v", e.p.binds[i].name, err)), false
			}
		}
	}
	if f := d.nextFault(); f != 0 {
		wt := "BATCH"
		if typ == 1 {
			wt = "UNLOGGED_BATCH"
		}
		return faultResponse(stream, f, consistency, wt)
	}
	for _, e := range entries {
		if _, err := d.run(c, e.p, e.values, e.unset); err != nil {
			// Checked above; a failure here is a bug in the double.
			return writeError(protoV4, stream, &cqlError{code: codeServer, msg: "double: " + err.msg}), false
		}
	}
	d.writes++
	return writeResult(stream, &result{kind: resultVoid}, false), false
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func faultResponse(stream int16, f Fault, consistency uint16, writeType string) ([]byte, bool) {
	switch f {
	case WriteTimeout:
		return writeError(protoV4, stream, &cqlError{code: codeWriteTimeout,
			msg: "Operation timed out - received only 0 responses.",
			extra: func(w *writer) {
				w.short(consistency)
				w.int(0)
				w.int(1)
				w.string(writeType)
			}}), false
	case Unavailable:
		return writeError(protoV4, stream, &cqlError{code: codeUnavailable,
			msg: "Cannot achieve consistency level",
			extra: func(w *writer) {
				w.short(consistency)
				w.int(1)
				w.int(0)
			}}), false
	}
	return nil, true
}

// broadcastSchemaChange pushes a SCHEMA_CHANGE event to every connection
// registered for it, as a node does after DDL.
func (d *Double) broadcastSchemaChange(from *conn, res *result) {
	d.mu.Lock()
	var to []*conn
	for c := range d.conns {
		if c.events["SCHEMA_CHANGE"] {
			to = append(to, c)
		}
	}
	d.mu.Unlock()
	for _, c := range to {
		w := newResponse(protoV4, -1, opEvent)
		w.string("SCHEMA_CHANGE")
		writeSchemaChange(w, res)
		c.send(w.finish())
	}
}

func writeSchemaChange(w *writer, res *result) {
	w.string(res.change)
	w.string(res.target)
	w.string(res.keyspace)
	if res.target == "TABLE" {
		w.string(res.table)
	}
}

func writeResult(stream int16, res *result, skipMeta bool) []byte {
	w := newResponse(protoV4, stream, opResult)
	w.int(int32(res.kind))
	switch res.kind {
	case resultSetKeyspace:
		w.string(res.keyspace)
	case resultSchemaChange:
		writeSchemaChange(w, res)
	case resultRows:
		if skipMeta {
			w.int(rowsNoMetadata)
			w.int(int32(len(res.cols)))
		} else {
			writeColumns(w, res.resultKS, res.resultName, res.cols)
		}
		w.int(int32(len(res.rows)))
		for _, row := range res.rows {
			for _, v := range row {
				w.bytes(v)
			}
		}
	}
	return w.finish()
}

func writeColumns(w *writer, ks, table string, cols []column) {
	w.int(rowsGlobalSpec)
	w.int(int32(len(cols)))
	w.string(ks)
	w.string(table)
	for _, c := range cols {
		w.string(c.name)
		c.typ.write(w)
	}
}

func writePrepared(stream int16, p *prepared) []byte {
	w := newResponse(protoV4, stream, opResult)
	w.int(resultPrepared)
	w.shortBytes(p.id)
	// Bind variables, with the partition key's marker indexes (v4).
	w.int(rowsGlobalSpec)
	w.int(int32(len(p.binds)))
	w.int(int32(len(p.pkIdx)))
	for _, i := range p.pkIdx {
		w.short(i)
	}
	w.string(p.ks)
	w.string(p.table)
	for _, c := range p.binds {
		w.string(c.name)
		c.typ.write(w)
	}
	// Result metadata.
	if p.cols == nil {
		w.int(rowsNoMetadata)
		w.int(0)
	} else {
		writeColumns(w, p.ks, p.table, p.cols)
	}
	return w.finish()
}
