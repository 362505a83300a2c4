package cassandratest

import (
	"crypto/md5"
	"encoding/binary"
	"net"
	"slices"
	"sort"
	"strings"

	"github.com/google/uuid"
)

// prepared is a statement resolved against the schema: what its bind
// markers are and what it returns.
type prepared struct {
	id    []byte
	query string
	stmt  any
	ks    string // keyspace the statement runs in ("" for DDL without one)
	table string
	binds []column
	pkIdx []uint16
	cols  []column // result columns; nil for statements that return none
	write bool
}

// result is what a statement returns.
type result struct {
	kind       int
	keyspace   string // set keyspace, schema change
	change     string // schema change: CREATED
	target     string // schema change: KEYSPACE or TABLE
	table      string
	cols       []column
	rows       [][][]byte
	resultKS   string
	resultName string
}

const limitMarker = "[limit]"

// resolve returns the table a DML statement names, real or virtual. Callers
// hold d.mu.
func (d *Double) resolve(ks, name, current string) (*table, *cqlError) {
	if ks == "" {
		ks = current
	}
	if ks == "" {
		return nil, errInvalid("No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename")
	}
	if t := d.virtualTable(ks, name); t != nil {
		return t, nil
	}
	if ks == "system" || ks == "system_schema" {
		return nil, errInvalid("unconfigured table %s", name)
	}
	k := d.keyspaces[ks]
	if k == nil {
		return nil, errInvalid("Keyspace %s does not exist", ks)
	}
	t := k.tables[name]
	if t == nil {
		return nil, errInvalid("unconfigured table %s", name)
	}
	return t, nil
}

// prepare parses a statement and resolves it against the schema. Callers
// hold d.mu.
func (d *Double) prepare(query, current string) (*prepared, *cqlError) {
	stmt, err := parse(query)
	if err != nil {
		return nil, err
	}
	sum := md5.Sum([]byte(current + "\x00" + query))
	p := &prepared{id: sum[:], query: query, stmt: stmt}
	switch s := stmt.(type) {
	case insertStmt:
		t, err := d.resolve(s.ks, s.table, current)
		if err != nil {
			return nil, err
		}
		if t.ks == "system" || t.ks == "system_schema" {
			return nil, &cqlError{code: 0x2100, msg: t.ks + " keyspace is not user-modifiable"}
		}
		p.ks, p.table, p.write = t.ks, t.name, true
		for _, c := range s.cols {
			col, err := t.col(c)
			if err != nil {
				return nil, err
			}
			if slices.ContainsFunc(p.binds, func(b column) bool { return b.name == c }) {
				return nil, errInvalid("multiple definitions found for column %s", c)
			}
			p.binds = append(p.binds, col)
		}
		for _, k := range append(slices.Clone(t.partition), t.clustering...) {
			if !slices.Contains(s.cols, k) {
				return nil, errInvalid("Some primary key parts are missing: %s", k)
			}
		}
		for _, k := range t.partition {
			p.pkIdx = append(p.pkIdx, uint16(slices.Index(s.cols, k)))
		}
	case selectStmt:
		t, err := d.resolve(s.ks, s.table, current)
		if err != nil {
			return nil, err
		}
		p.ks, p.table = t.ks, t.name
		bound := map[string]uint16{}
		for _, c := range s.where {
			col, err := t.col(c.col)
			if err != nil {
				return nil, err
			}
			if c.val.bind {
				bound[c.col] = uint16(len(p.binds))
				p.binds = append(p.binds, col)
			} else if _, err := col.typ.literal(c.val.lit); err != nil {
				return nil, err
			}
		}
		if s.limit != nil && s.limit.bind {
			p.binds = append(p.binds, column{name: limitMarker, typ: cqlType{code: typeInt}})
		}
		if err := checkRestrictions(t, s.where); err != nil {
			return nil, err
		}
		for _, k := range t.partition {
			i, ok := bound[k]
			if !ok {
				p.pkIdx = nil
				break
			}
			p.pkIdx = append(p.pkIdx, i)
		}
		switch {
		case s.count:
			p.cols = []column{{name: "count", typ: cqlType{code: typeBigint}}}
		case s.cols == nil:
			p.cols = t.cols
		default:
			for _, c := range s.cols {
				col, err := t.col(c)
				if err != nil {
					return nil, err
				}
				p.cols = append(p.cols, col)
			}
		}
	case createKeyspaceStmt, createTableStmt, createIndexStmt, useStmt:
	default:
		return nil, errSyntax("unsupported statement")
	}
	return p, nil
}

// checkRestrictions applies CQL's rules for WHERE without ALLOW FILTERING:
// the partition key is restricted entirely, by equality, or not at all;
// clustering columns only as a prefix after it, each by equality but the
// last, which may be a slice (one lower bound, one upper bound, or both);
// and nothing else; or (storage-attached indexes) one equality on an
// indexed column alone.
func checkRestrictions(t *table, where []cond) *cqlError {
	if len(where) == 1 && where[0].op == "=" && t.indexed(where[0].col) {
		return nil
	}
	eq := map[string]bool{}
	slice := map[string][]string{} // column -> its slice operators
	for _, c := range where {
		if !slices.Contains(t.partition, c.col) && !slices.Contains(t.clustering, c.col) {
			return errInvalid("Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING (column %s is not part of the primary key)", c.col)
		}
		if c.op == "=" {
			if eq[c.col] || len(slice[c.col]) > 0 {
				return errInvalid("%s cannot be restricted by more than one relation if it includes an Equal", c.col)
			}
			eq[c.col] = true
			continue
		}
		if slices.Contains(t.partition, c.col) {
			return errInvalid("Only EQ and IN relation are supported on the partition key (unless you use the token() function)")
		}
		if eq[c.col] {
			return errInvalid("%s cannot be restricted by more than one relation if it includes an Equal", c.col)
		}
		for _, o := range slice[c.col] {
			if o[0] == c.op[0] {
				return errInvalid("More than one restriction was found for the %s bound on %s", map[byte]string{'<': "end", '>': "start"}[o[0]], c.col)
			}
		}
		slice[c.col] = append(slice[c.col], c.op)
	}
	n := 0
	for _, k := range t.partition {
		if eq[k] {
			n++
		}
	}
	if n != 0 && n != len(t.partition) || n == 0 && len(where) > 0 {
		return errInvalid("Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING")
	}
	gap, sliced := "", ""
	for _, k := range t.clustering {
		restricted := eq[k] || len(slice[k]) > 0
		switch {
		case !restricted:
			if gap == "" {
				gap = k
			}
		case gap != "":
			return errInvalid("PRIMARY KEY column %q cannot be restricted as preceding column %q is not restricted", k, gap)
		case sliced != "":
			return errInvalid("Clustering column %q cannot be restricted (preceding column %q is restricted by a non-EQ relation)", k, sliced)
		}
		if len(slice[k]) > 0 {
			sliced = k
		}
	}
	return nil
}

// inSlice reports whether v satisfies v op bound in the type's order.
func inSlice(typ cqlType, v []byte, op string, bound []byte) bool {
	n := typ.compare(v, bound)
	switch op {
	case "<":
		return n < 0
	case "<=":
		return n <= 0
	case ">":
		return n > 0
	case ">=":
		return n >= 0
	}
	return n == 0
}

// run executes a prepared statement with its bound values. Callers hold
// d.mu.
func (d *Double) run(c *conn, p *prepared, values [][]byte, unset []bool) (*result, *cqlError) {
	if len(values) != len(p.binds) {
		return nil, errInvalid("There were %d markers(?) in CQL but %d bound variables", len(p.binds), len(values))
	}
	for i, v := range values {
		if v == nil {
			continue
		}
		if err := p.binds[i].typ.check(v); err != nil {
			return nil, errInvalid("Invalid value for column %s: %v", p.binds[i].name, err)
		}
	}
	switch s := p.stmt.(type) {
	case insertStmt:
		t, err := d.resolve(p.ks, p.table, "")
		if err != nil {
			return nil, err
		}
		cells := map[string][]byte{}
		for i, col := range p.binds {
			if unset[i] {
				continue
			}
			cells[col.name] = values[i]
		}
		for _, k := range append(slices.Clone(t.partition), t.clustering...) {
			if cells[k] == nil {
				return nil, errInvalid("Invalid null value in condition for column %s", k)
			}
		}
		t.upsert(cells)
		return &result{kind: resultVoid}, nil
	case selectStmt:
		return d.selectRows(p, s, values)
	case useStmt:
		if d.keyspaces[s.ks] == nil && s.ks != "system" && s.ks != "system_schema" {
			return nil, errInvalid("Keyspace '%s' does not exist", s.ks)
		}
		c.keyspace = s.ks
		return &result{kind: resultSetKeyspace, keyspace: s.ks}, nil
	case createKeyspaceStmt:
		return d.createKeyspace(s)
	case createTableStmt:
		return d.createTable(s, c.keyspace)
	case createIndexStmt:
		return d.createIndex(s, c.keyspace)
	}
	return nil, errSyntax("unsupported statement")
}

func (d *Double) selectRows(p *prepared, s selectStmt, values [][]byte) (*result, *cqlError) {
	t, err := d.resolve(p.ks, p.table, "")
	if err != nil {
		return nil, err
	}
	eq := map[string][]byte{}
	type bound struct {
		op string
		v  []byte
	}
	bounds := map[string][]bound{}
	bi := 0
	for _, c := range s.where {
		col, _ := t.col(c.col)
		var v []byte
		if c.val.bind {
			v = values[bi]
			bi++
			if v == nil {
				return nil, errInvalid("Invalid null value in condition for column %s", c.col)
			}
		} else {
			v, _ = col.typ.literal(c.val.lit)
		}
		if c.op == "=" {
			eq[c.col] = v
		} else {
			bounds[c.col] = append(bounds[c.col], bound{c.op, v})
		}
	}
	limit := -1
	if s.limit != nil {
		if s.limit.bind {
			v := values[bi]
			if len(v) != 4 || int32(binary.BigEndian.Uint32(v)) <= 0 {
				return nil, errInvalid("LIMIT must be strictly positive")
			}
			limit = int(int32(binary.BigEndian.Uint32(v)))
		} else {
			limit, _ = atoi(s.limit.lit.text)
		}
	}
	var parts []*partition
	var byIndex string // an indexed column the rows are selected by
	for c := range eq {
		if t.indexed(c) && !slices.Contains(t.partition, c) && !slices.Contains(t.clustering, c) {
			byIndex = c
		}
	}
	if _, ok := eq[t.partition[0]]; ok {
		pk := make([][]byte, len(t.partition))
		for i, k := range t.partition {
			pk[i] = eq[k]
		}
		if part := t.parts[key(pk)]; part != nil {
			parts = append(parts, part)
		}
	} else {
		keys := make([]string, 0, len(t.parts))
		for k := range t.parts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, t.parts[k])
		}
	}
	var matched []*row
	for _, part := range parts {
	rows:
		for _, r := range t.sorted(part) {
			if byIndex != "" && string(r.cells[byIndex]) != string(eq[byIndex]) {
				continue rows
			}
			for i, k := range t.clustering {
				if v, ok := eq[k]; ok && string(v) != string(r.ck[i]) {
					continue rows
				}
				for _, b := range bounds[k] {
					if !inSlice(t.cols[t.byName[k]].typ, r.ck[i], b.op, b.v) {
						continue rows
					}
				}
			}
			matched = append(matched, r)
		}
	}
	res := &result{kind: resultRows, cols: p.cols, resultKS: t.ks, resultName: t.name}
	if s.count {
		res.rows = [][][]byte{{binary.BigEndian.AppendUint64(nil, uint64(len(matched)))}}
		return res, nil
	}
	if limit >= 0 && len(matched) > limit {
		matched = matched[:limit]
	}
	for _, r := range matched {
		out := make([][]byte, len(p.cols))
		for i, col := range p.cols {
			out[i] = r.cells[col.name]
		}
		res.rows = append(res.rows, out)
	}
	return res, nil
}

func atoi(s string) (int, bool) {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

var strategies = map[string]string{
	"simplestrategy":          "org.apache.cassandra.locator.SimpleStrategy",
	"networktopologystrategy": "org.apache.cassandra.locator.NetworkTopologyStrategy",
}

func (d *Double) createKeyspace(s createKeyspaceStmt) (*result, *cqlError) {
	if s.name == "system" || s.name == "system_schema" || d.keyspaces[s.name] != nil {
		if s.ifNotExists {
			return &result{kind: resultVoid}, nil
		}
		return nil, &cqlError{code: 0x2400, msg: "Cannot add existing keyspace \"" + s.name + "\"",
			extra: func(w *writer) { w.string(s.name); w.string("") }}
	}
	class := s.replication["class"]
	short := strings.ToLower(class[strings.LastIndexByte(class, '.')+1:])
	full, ok := strategies[short]
	if !ok {
		return nil, &cqlError{code: 0x2300, msg: "Unable to find replication strategy class '" + class + "'"}
	}
	repl := map[string]string{"class": full}
	for k, v := range s.replication {
		if k == "class" {
			continue
		}
		if _, ok := atoi(v); !ok || v == "" {
			return nil, &cqlError{code: 0x2300, msg: "Replication factor must be a positive integer, got '" + v + "' for " + k}
		}
		if short == "simplestrategy" && k != "replication_factor" {
			return nil, &cqlError{code: 0x2300, msg: "Unrecognized strategy option {" + k + "} passed to SimpleStrategy"}
		}
		repl[k] = v
	}
	if short == "simplestrategy" && repl["replication_factor"] == "" {
		return nil, &cqlError{code: 0x2300, msg: "SimpleStrategy requires a replication_factor strategy option."}
	}
	d.keyspaces[s.name] = &keyspace{name: s.name, replication: repl, durable: s.durable, tables: map[string]*table{}}
	d.schemaChanged()
	return &result{kind: resultSchemaChange, change: "CREATED", target: "KEYSPACE", keyspace: s.name}, nil
}

func (d *Double) createTable(s createTableStmt, current string) (*result, *cqlError) {
	ks := s.ks
	if ks == "" {
		ks = current
	}
	k := d.keyspaces[ks]
	if k == nil {
		return nil, errInvalid("Keyspace %s doesn't exist", ks)
	}
	if k.tables[s.name] != nil {
		if s.ifNotExists {
			return &result{kind: resultVoid}, nil
		}
		return nil, &cqlError{code: 0x2400, msg: "Object " + ks + "." + s.name + " already exists",
			extra: func(w *writer) { w.string(ks); w.string(s.name) }}
	}
	t, err := newTable(ks, s.name, s.cols, s.partition, s.clustering, s.desc)
	if err != nil {
		return nil, err
	}
	k.tables[s.name] = t
	d.schemaChanged()
	return &result{kind: resultSchemaChange, change: "CREATED", target: "TABLE", keyspace: ks, table: s.name}, nil
}

// createIndex adds a storage-attached index on a regular column.
func (d *Double) createIndex(s createIndexStmt, current string) (*result, *cqlError) {
	t, err := d.resolve(s.ks, s.table, current)
	if err != nil {
		return nil, err
	}
	if _, err := t.col(s.col); err != nil {
		return nil, err
	}
	if _, ok := t.indexes[s.name]; ok {
		if s.ifNotExists {
			return &result{kind: resultVoid}, nil
		}
		return nil, &cqlError{code: 0x2400, msg: "Index " + s.name + " already exists",
			extra: func(w *writer) { w.string(t.ks); w.string(t.name) }}
	}
	if slices.Contains(t.partition, s.col) && len(t.partition) == 1 {
		return nil, errInvalid("Cannot create secondary index on the only partition key column %s", s.col)
	}
	t.indexes[s.name] = s.col
	d.schemaChanged()
	return &result{kind: resultSchemaChange, change: "UPDATED", target: "TABLE", keyspace: t.ks, table: t.name}, nil
}

// schemaChanged gives the node a new schema version. Callers hold d.mu.
func (d *Double) schemaChanged() { d.schemaVersion = uuid.New() }

// virtualTable builds the system tables a driver reads, from the double's
// state; nil for any other name. Callers hold d.mu.
func (d *Double) virtualTable(ks, name string) *table {
	text := cqlType{code: typeVarchar}
	inet := cqlType{code: typeInet}
	id := cqlType{code: typeUUID}
	tokens := cqlType{code: typeSet, elems: []cqlType{text}}
	ip := net.IPv4(127, 0, 0, 1).To4()
	switch ks + "." + name {
	case "system.local":
		t, _ := newTable(ks, name, []column{{"key", text}, {"bootstrapped", text}, {"broadcast_address", inet},
			{"cluster_name", text}, {"cql_version", text}, {"data_center", text}, {"host_id", id},
			{"listen_address", inet}, {"partitioner", text}, {"rack", text}, {"release_version", text},
			{"rpc_address", inet}, {"schema_version", id}, {"tokens", tokens}}, []string{"key"}, nil, nil)
		t.upsert(map[string][]byte{
			"key": []byte("local"), "bootstrapped": []byte("COMPLETED"), "broadcast_address": ip,
			"cluster_name": []byte("cassandratest double"), "cql_version": []byte("3.4.5"),
			"data_center": []byte(DataCenter), "host_id": d.hostID[:], "listen_address": ip,
			"partitioner": []byte("org.apache.cassandra.dht.Murmur3Partitioner"), "rack": []byte("rack1"),
			"release_version": []byte(d.release), "rpc_address": ip, "schema_version": d.schemaVersion[:],
			"tokens": encodeTextCollection([]string{"0"}),
		})
		return t
	case "system.peers":
		t, _ := newTable(ks, name, []column{{"peer", inet}, {"data_center", text}, {"host_id", id},
			{"preferred_ip", inet}, {"rack", text}, {"release_version", text}, {"rpc_address", inet},
			{"schema_version", id}, {"tokens", tokens}}, []string{"peer"}, nil, nil)
		return t
	case "system_schema.keyspaces":
		t, _ := newTable(ks, name, []column{{"keyspace_name", text}, {"durable_writes", cqlType{code: typeBoolean}},
			{"replication", cqlType{code: typeMap, elems: []cqlType{text, text}}}}, []string{"keyspace_name"}, nil, nil)
		for _, k := range d.keyspaces {
			durable := []byte{0}
			if k.durable {
				durable = []byte{1}
			}
			t.upsert(map[string][]byte{"keyspace_name": []byte(k.name), "durable_writes": durable,
				"replication": encodeTextMap(k.replication)})
		}
		return t
	}
	return nil
}

func encodeTextCollection(l []string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(l)))
	for _, s := range l {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

func encodeTextMap(m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b := binary.BigEndian.AppendUint32(nil, uint32(len(m)))
	for _, k := range keys {
		for _, s := range []string{k, m[k]} {
			b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
			b = append(b, s...)
		}
	}
	return b
}
