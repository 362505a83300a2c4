package cassandratest

import (
	"strconv"
	"strings"
	"unicode"
)

// token kinds of the double's CQL lexer.
const (
	tkIdent  = iota // unquoted identifier or keyword, lower-cased
	tkQuoted        // "Quoted" identifier, case kept
	tkString        // 'string literal'
	tkNumber
	tkPunct
	tkEOF
)

type token struct {
	kind int
	text string
}

func lex(s string) ([]token, *cqlError) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '\'':
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, errSyntax("unterminated string literal")
				}
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			toks = append(toks, token{tkString, b.String()})
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				return nil, errSyntax("unterminated quoted identifier")
			}
			toks = append(toks, token{tkQuoted, s[i+1 : i+1+j]})
			i += j + 2
		case c == '_' || unicode.IsLetter(rune(c)):
			j := i
			for j < len(s) && (s[j] == '_' || unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j]))) {
				j++
			}
			toks = append(toks, token{tkIdent, strings.ToLower(s[i:j])})
			i = j
		case unicode.IsDigit(rune(c)) || (c == '-' && i+1 < len(s) && unicode.IsDigit(rune(s[i+1]))):
			j := i + 1
			for j < len(s) && (unicode.IsDigit(rune(s[j])) || s[j] == '.') {
				j++
			}
			toks = append(toks, token{tkNumber, s[i:j]})
			i = j
		case strings.IndexByte("(),;.=?*{}:<>", c) >= 0:
			toks = append(toks, token{tkPunct, string(c)})
			i++
		default:
			return nil, errSyntax("line 1:%d no viable alternative at character '%c'", i, c)
		}
	}
	return append(toks, token{kind: tkEOF}), nil
}

// parser is a recursive-descent parser for the handful of CQL statements the
// double understands. Anything else is a syntax error, as a bug in the
// code under test should be.
type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tkEOF {
		p.pos++
	}
	return t
}

// is reports whether the next token is the keyword or punctuation s.
func (p *parser) is(s string) bool {
	t := p.peek()
	return (t.kind == tkIdent || t.kind == tkPunct) && t.text == s
}

func (p *parser) accept(s string) bool {
	if p.is(s) {
		p.pos++
		return true
	}
	return false
}

func (p *parser) expect(s string) *cqlError {
	if !p.accept(s) {
		return p.unexpected(s)
	}
	return nil
}

func (p *parser) unexpected(want string) *cqlError {
	t := p.peek()
	if t.kind == tkEOF {
		return errSyntax("line 1: mismatched input <EOF> expecting %s", want)
	}
	return errSyntax("line 1: mismatched input '%s' expecting %s", t.text, want)
}

func (p *parser) ident() (string, *cqlError) {
	t := p.peek()
	if t.kind != tkIdent && t.kind != tkQuoted {
		return "", p.unexpected("identifier")
	}
	p.pos++
	return t.text, nil
}

// qualified parses [keyspace.]name.
func (p *parser) qualified() (ks, name string, err *cqlError) {
	a, err := p.ident()
	if err != nil {
		return "", "", err
	}
	if p.accept(".") {
		b, err := p.ident()
		if err != nil {
			return "", "", err
		}
		return a, b, nil
	}
	return "", a, nil
}

func (p *parser) end() *cqlError {
	p.accept(";")
	if p.peek().kind != tkEOF {
		return p.unexpected("end of statement")
	}
	return nil
}

// term is a value in a statement: a bind marker or a literal.
type term struct {
	bind bool
	lit  token
}

func (p *parser) term() (term, *cqlError) {
	if p.accept("?") {
		return term{bind: true}, nil
	}
	t := p.peek()
	switch t.kind {
	case tkString, tkNumber:
		p.pos++
		return term{lit: t}, nil
	case tkIdent:
		if t.text == "true" || t.text == "false" {
			p.pos++
			return term{lit: t}, nil
		}
	}
	return term{}, p.unexpected("a bind marker or literal")
}

type (
	createKeyspaceStmt struct {
		name        string
		ifNotExists bool
		replication map[string]string
		durable     bool
	}
	createTableStmt struct {
		ks, name    string
		ifNotExists bool
		cols        []column
		partition   []string
		clustering  []string
		desc        map[string]bool
	}
	createIndexStmt struct {
		name, ks, table, col string
		ifNotExists          bool
	}
	useStmt    struct{ ks string }
	insertStmt struct {
		ks, table string
		cols      []string
	}
	// cond is one relation of a WHERE clause: col op val, op one of
	// = < <= > >=.
	cond struct {
		col string
		op  string
		val term
	}
	selectStmt struct {
		ks, table string
		count     bool
		cols      []string // nil for *
		where     []cond
		limit     *term
	}
)

func parse(q string) (any, *cqlError) {
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	switch {
	case p.accept("create"):
		switch {
		case p.accept("keyspace"):
			return p.createKeyspace()
		case p.accept("table"), p.accept("columnfamily"):
			return p.createTable()
		case p.accept("index"):
			return p.createIndex()
		}
		return nil, p.unexpected("KEYSPACE, TABLE or INDEX (the double supports no other CREATE)")
	case p.accept("use"):
		ks, err := p.ident()
		if err != nil {
			return nil, err
		}
		return useStmt{ks}, p.end()
	case p.accept("insert"):
		return p.insert()
	case p.accept("select"):
		return p.selectStmt()
	}
	return nil, p.unexpected("a statement the double supports (CREATE KEYSPACE/TABLE/INDEX, USE, INSERT, SELECT)")
}

// createIndex parses CREATE INDEX [IF NOT EXISTS] name ON [ks.]table (col)
// USING 'sai': the double knows storage-attached indexes only.
func (p *parser) createIndex() (any, *cqlError) {
	var s createIndexStmt
	var err *cqlError
	if s.ifNotExists, err = p.ifNotExists(); err != nil {
		return nil, err
	}
	if s.name, err = p.ident(); err != nil {
		return nil, err
	}
	if err = p.expect("on"); err != nil {
		return nil, err
	}
	if s.ks, s.table, err = p.qualified(); err != nil {
		return nil, err
	}
	if err = p.expect("("); err != nil {
		return nil, err
	}
	if s.col, err = p.ident(); err != nil {
		return nil, err
	}
	if err = p.expect(")"); err != nil {
		return nil, err
	}
	if err = p.expect("using"); err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tkString || !strings.EqualFold(t.text, "sai") && t.text != "StorageAttachedIndex" {
		return nil, p.unexpected("'sai' (the double supports no other index)")
	}
	p.pos++
	return s, p.end()
}

func (p *parser) ifNotExists() (bool, *cqlError) {
	if !p.accept("if") {
		return false, nil
	}
	if err := p.expect("not"); err != nil {
		return false, err
	}
	return true, p.expect("exists")
}

func (p *parser) createKeyspace() (any, *cqlError) {
	var s createKeyspaceStmt
	var err *cqlError
	if s.ifNotExists, err = p.ifNotExists(); err != nil {
		return nil, err
	}
	if s.name, err = p.ident(); err != nil {
		return nil, err
	}
	if err = p.expect("with"); err != nil {
		return nil, err
	}
	s.durable = true
	for {
		opt, err := p.ident()
		if err != nil {
			return nil, err
		}
		if err := p.expect("="); err != nil {
			return nil, err
		}
		switch opt {
		case "replication":
			if s.replication, err = p.mapLiteral(); err != nil {
				return nil, err
			}
		case "durable_writes":
			t, err := p.term()
			if err != nil {
				return nil, err
			}
			s.durable = t.lit.text == "true"
		default:
			return nil, errSyntax("unknown keyspace property %q", opt)
		}
		if !p.accept("and") {
			break
		}
	}
	if s.replication == nil {
		return nil, errSyntax("missing mandatory replication strategy class")
	}
	return s, p.end()
}

func (p *parser) mapLiteral() (map[string]string, *cqlError) {
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for !p.accept("}") {
		if len(m) > 0 {
			if err := p.expect(","); err != nil {
				return nil, err
			}
		}
		k, err := p.term()
		if err != nil || k.bind {
			return nil, p.unexpected("a map key literal")
		}
		if err := p.expect(":"); err != nil {
			return nil, err
		}
		v, err := p.term()
		if err != nil || v.bind {
			return nil, p.unexpected("a map value literal")
		}
		m[k.lit.text] = v.lit.text
	}
	return m, nil
}

func (p *parser) createTable() (any, *cqlError) {
	s := createTableStmt{desc: map[string]bool{}}
	var err *cqlError
	if s.ifNotExists, err = p.ifNotExists(); err != nil {
		return nil, err
	}
	if s.ks, s.name, err = p.qualified(); err != nil {
		return nil, err
	}
	if err = p.expect("("); err != nil {
		return nil, err
	}
	for {
		if p.accept("primary") {
			if err := p.expect("key"); err != nil {
				return nil, err
			}
			if s.partition != nil {
				return nil, errInvalid("multiple PRIMARY KEYs specified")
			}
			if err := p.primaryKey(&s); err != nil {
				return nil, err
			}
		} else {
			name, err := p.ident()
			if err != nil {
				return nil, err
			}
			t, err := p.cqlType()
			if err != nil {
				return nil, err
			}
			s.cols = append(s.cols, column{name: name, typ: t})
			if p.accept("primary") {
				if err := p.expect("key"); err != nil {
					return nil, err
				}
				if s.partition != nil {
					return nil, errInvalid("multiple PRIMARY KEYs specified")
				}
				s.partition = []string{name}
			}
		}
		if p.accept(")") {
			break
		}
		if err := p.expect(","); err != nil {
			return nil, err
		}
	}
	if p.accept("with") {
		for {
			if p.accept("clustering") {
				if err := p.expect("order"); err != nil {
					return nil, err
				}
				if err := p.expect("by"); err != nil {
					return nil, err
				}
				if err := p.expect("("); err != nil {
					return nil, err
				}
				for {
					c, err := p.ident()
					if err != nil {
						return nil, err
					}
					switch {
					case p.accept("desc"):
						s.desc[c] = true
					case p.accept("asc"):
					}
					if p.accept(")") {
						break
					}
					if err := p.expect(","); err != nil {
						return nil, err
					}
				}
			} else {
				if _, err := p.ident(); err != nil {
					return nil, err
				}
				if err := p.expect("="); err != nil {
					return nil, err
				}
				if p.is("{") {
					if _, err := p.mapLiteral(); err != nil {
						return nil, err
					}
				} else if _, err := p.term(); err != nil {
					return nil, err
				}
			}
			if !p.accept("and") {
				break
			}
		}
	}
	if s.partition == nil {
		return nil, errInvalid("no PRIMARY KEY specified for table %s (exactly one required)", s.name)
	}
	return s, p.end()
}

func (p *parser) primaryKey(s *createTableStmt) *cqlError {
	if err := p.expect("("); err != nil {
		return err
	}
	if p.accept("(") {
		for {
			c, err := p.ident()
			if err != nil {
				return err
			}
			s.partition = append(s.partition, c)
			if p.accept(")") {
				break
			}
			if err := p.expect(","); err != nil {
				return err
			}
		}
	} else {
		c, err := p.ident()
		if err != nil {
			return err
		}
		s.partition = []string{c}
	}
	for !p.accept(")") {
		if err := p.expect(","); err != nil {
			return err
		}
		c, err := p.ident()
		if err != nil {
			return err
		}
		s.clustering = append(s.clustering, c)
	}
	return nil
}

func (p *parser) cqlType() (cqlType, *cqlError) {
	name, err := p.ident()
	if err != nil {
		return cqlType{}, err
	}
	switch name {
	case "set", "list", "map":
		if err := p.expect("<"); err != nil {
			return cqlType{}, err
		}
		var t cqlType
		e, err := p.cqlType()
		if err != nil {
			return cqlType{}, err
		}
		t.elems = []cqlType{e}
		if name == "map" {
			if err := p.expect(","); err != nil {
				return cqlType{}, err
			}
			v, err := p.cqlType()
			if err != nil {
				return cqlType{}, err
			}
			t.elems = append(t.elems, v)
		}
		if err := p.expect(">"); err != nil {
			return cqlType{}, err
		}
		t.code = map[string]uint16{"list": typeList, "set": typeSet, "map": typeMap}[name]
		return t, nil
	}
	code, ok := scalarTypes[name]
	if !ok {
		return cqlType{}, errSyntax("unknown type %s (the double supports %s)", name, scalarTypeNames())
	}
	return cqlType{code: code}, nil
}

func (p *parser) insert() (any, *cqlError) {
	var s insertStmt
	var err *cqlError
	if err = p.expect("into"); err != nil {
		return nil, err
	}
	if s.ks, s.table, err = p.qualified(); err != nil {
		return nil, err
	}
	if err = p.expect("("); err != nil {
		return nil, err
	}
	for {
		c, err := p.ident()
		if err != nil {
			return nil, err
		}
		s.cols = append(s.cols, c)
		if p.accept(")") {
			break
		}
		if err := p.expect(","); err != nil {
			return nil, err
		}
	}
	if err = p.expect("values"); err != nil {
		return nil, err
	}
	if err = p.expect("("); err != nil {
		return nil, err
	}
	n := 0
	for {
		if !p.accept("?") {
			return nil, p.unexpected("'?' (the double accepts bind markers only in INSERT)")
		}
		n++
		if p.accept(")") {
			break
		}
		if err := p.expect(","); err != nil {
			return nil, err
		}
	}
	if n != len(s.cols) {
		return nil, errInvalid("unmatched column names/values: %d columns, %d values", len(s.cols), n)
	}
	if p.is("using") || p.is("if") {
		return nil, p.unexpected("end of statement (USING and IF are not supported by the double)")
	}
	return s, p.end()
}

func (p *parser) selectStmt() (any, *cqlError) {
	var s selectStmt
	var err *cqlError
	switch {
	case p.accept("*"):
	case p.is("count"):
		p.next()
		if err := p.expect("("); err != nil {
			return nil, err
		}
		if !p.accept("*") && !p.accept("1") {
			return nil, p.unexpected("'*'")
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		s.count = true
	default:
		for {
			c, err := p.ident()
			if err != nil {
				return nil, err
			}
			s.cols = append(s.cols, c)
			if !p.accept(",") {
				break
			}
		}
	}
	if err = p.expect("from"); err != nil {
		return nil, err
	}
	if s.ks, s.table, err = p.qualified(); err != nil {
		return nil, err
	}
	if p.accept("where") {
		for {
			c, err := p.ident()
			if err != nil {
				return nil, err
			}
			var op string
			switch {
			case p.accept("="):
				op = "="
			case p.accept("<"):
				op = "<"
			case p.accept(">"):
				op = ">"
			default:
				return nil, errInvalid("the double supports only =, <, <=, > and >= restrictions")
			}
			if op != "=" && p.accept("=") {
				op += "="
			}
			v, err := p.term()
			if err != nil {
				return nil, err
			}
			s.where = append(s.where, cond{c, op, v})
			if !p.accept("and") {
				break
			}
		}
	}
	if p.is("order") || p.is("allow") || p.is("group") {
		return nil, p.unexpected("LIMIT or end of statement (ORDER BY, GROUP BY and ALLOW FILTERING are not supported by the double)")
	}
	if p.accept("limit") {
		t, err := p.term()
		if err != nil {
			return nil, err
		}
		if !t.bind {
			if n, cerr := strconv.Atoi(t.lit.text); cerr != nil || n <= 0 {
				return nil, errInvalid("LIMIT must be strictly positive")
			}
		}
		s.limit = &t
	}
	return s, p.end()
}
