// Package redact hides the secrets an address can carry, so that every
// address userstream prints, logs, returns in an error, shows on a page or
// in a REST answer goes through one rule.
//
// A secret is the password of a URL's user info (user:PASSWORD@host) and
// the value of every parameter whose name Key reports as secret, in a URL's
// query, fragment or ;-parameters (postgres://h/db?password=PW,
// jdbc:postgresql://h/db?user=u&password=PW, jdbc:sqlserver://h;password=PW)
// or in a libpq keyword/value string (host=h password='PW'). User names,
// hosts, paths and other parameters stay, so a message still says where.
// Config values and JSON documents (Connect's connector configs) follow the
// same rule through Value and JSON, the whole value of a secret key read
// as Hidden; Error hides the secrets of addresses that a library's error
// quotes.
package redact

import (
	"bytes"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
)

// Mask stands for a secret inside an address, as net/url's URL.Redacted
// writes it.
const Mask = "xxxxx"

// Hidden stands for the whole value of a secret config key: Kafka
// Connect's word for a PASSWORD value.
const Hidden = "[hidden]"

// Value returns config value v of key k as it may be shown: Hidden when k
// names a secret (Key) and v is not empty, else v with the secrets of an
// address in it hidden (URL).
func Value(k, v string) string {
	if Key(k) {
		if v == "" {
			return v
		}
		return Hidden
	}
	return URL(v)
}

// secretWords make a name secret wherever they appear in it
// (ssl.key.password, sasl.jaas.config, access_token, client_secret).
var secretWords = []string{"password", "passwd", "passphrase", "secret", "token", "credential", "jaas", "signature"}

// Key reports whether a parameter or config key names a secret: it contains
// password, passwd, passphrase, secret, token, credential, jaas or
// signature (any case), or its last word (words split at anything but
// letters and digits) is pwd, pass, auth, authorization, sig, apikey,
// accesskey or privatekey, or a key after api, access or private (api_key,
// access.key, private-key), or the whole name is key. A key word anywhere
// else (key.converter, sslkey: a file path) and the other settings of an
// auth (auth.username) are not secret.
func Key(name string) bool {
	n := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	words := strings.FieldsFunc(n, func(r rune) bool { return !('a' <= r && r <= 'z' || '0' <= r && r <= '9') })
	if len(words) == 0 {
		return false
	}
	switch last := words[len(words)-1]; last {
	case "pwd", "pass", "auth", "authorization", "sig", "apikey", "accesskey", "privatekey":
		return true
	case "key":
		if len(words) == 1 {
			return true
		}
		prev := words[len(words)-2]
		return prev == "api" || prev == "access" || prev == "private"
	}
	return false
}

// JSON returns the JSON document b with its secrets hidden as Value hides
// a config's (every string under a secret key reads Hidden, every other
// string has an address's secrets masked), compact, with object keys
// sorted; changed is false, and b is returned as it is, when nothing was
// hidden or b is not one JSON document.
func JSON(b []byte) (out []byte, changed bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil || d.More() {
		return b, false
	}
	v, changed = hideJSON(v, "")
	if !changed {
		return b, false
	}
	out, err := json.Marshal(v)
	if err != nil {
		return b, false
	}
	return out, true
}

// hideJSON hides the secrets of v, the value of key (or an element of
// key's array).
func hideJSON(v any, key string) (any, bool) {
	changed := false
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if h, ok := hideJSON(e, k); ok {
				x[k], changed = h, true
			}
		}
	case []any:
		for i, e := range x {
			if h, ok := hideJSON(e, key); ok {
				x[i], changed = h, true
			}
		}
	case string:
		if h := Value(key, x); h != x {
			return h, true
		}
	}
	return v, changed
}

// URL returns raw with every secret replaced by Mask. It never fails: a
// URL that does not parse is redacted by its shape, and where the end of
// the user info is ambiguous (an '@' after a '/', '?' or '#') everything
// from "://" to the last '@' is hidden, user name included.
func URL(raw string) string {
	out, _ := scan(raw)
	return out
}

// secretsOf returns the secrets in raw as URL finds them, each also
// unescaped where that differs, for hiding them in text that quotes raw in
// another form (an error of a library).
func secretsOf(raw string) []string {
	_, found := scan(raw)
	var out []string
	for _, s := range found {
		if s == "" {
			continue
		}
		out = append(out, s)
		if p, err := url.PathUnescape(s); err == nil && p != s {
			out = append(out, p)
		}
		if q, err := url.QueryUnescape(s); err == nil && q != s {
			out = append(out, q)
		}
	}
	return out
}

// Error returns err with the secrets of the given addresses (as URL finds
// them, escaped or not)
// replaced by Mask in its message, and the address itself redacted where
// it appears whole; errors.Is and errors.As still see err. A nil err stays
// nil, and err is returned as it is when the addresses carry no secret.
func Error(err error, addrs ...string) error {
	if err == nil {
		return nil
	}
	var r redacted
	for _, a := range addrs {
		if s := secretsOf(a); len(s) > 0 {
			r.whole = append(r.whole, a)
			r.secrets = append(r.secrets, s...)
		}
	}
	if len(r.secrets) == 0 {
		return err
	}
	r.err = err
	return &r
}

type redacted struct {
	err     error
	whole   []string
	secrets []string
}

func (e *redacted) Error() string {
	msg := e.err.Error()
	for _, a := range e.whole {
		msg = strings.ReplaceAll(msg, a, URL(a))
	}
	for _, s := range e.secrets {
		msg = strings.ReplaceAll(msg, s, Mask)
	}
	return msg
}

func (e *redacted) Unwrap() error { return e.err }

var (
	// urlParam is a name=value after ?, &, ; or # in a URL; the value
	// ends at the next separator.
	urlParam = regexp.MustCompile(`([?&;#])([^=?&;#]*)=([^&;#]*)`)
	// kvParam is a libpq keyword = value, the value plain or quoted (an
	// unclosed quote runs to the end).
	kvParam = regexp.MustCompile(`(^|\s)([^\s=]+)(\s*=\s*)('(?:[^'\\]|\\.)*(?:'|\\?$)|\S*)`)
)

// scan redacts raw, and returns the secrets it hid.
func scan(raw string) (string, []string) {
	var found []string
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		if eq := strings.IndexByte(raw, '='); eq >= 0 && !strings.ContainsAny(raw[:eq], ":/?") {
			return params(raw, kvParam, &found), found
		}
		// sqlite:PATH?..., an opaque URL, or nothing to hide.
		return params(raw, urlParam, &found), found
	}
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString("://")
	authEnd := strings.IndexAny(rest, "/?#")
	if authEnd < 0 {
		authEnd = len(rest)
	}
	if at := strings.LastIndexByte(rest[:authEnd], '@'); at >= 0 {
		user, pass, hasPass := strings.Cut(rest[:at], ":")
		b.WriteString(user)
		if hasPass {
			found = append(found, pass)
			b.WriteString(":" + Mask)
		}
		rest = rest[at:]
	} else if at := strings.LastIndexByte(rest, '@'); at >= 0 && !paramOnly(rest[:at]) {
		// An '@' past the host: a password with an unescaped / ? or #,
		// or a URL this reading cannot tell from one; hide it all.
		found = append(found, rest[:at])
		if _, pass, ok := strings.Cut(rest[:at], ":"); ok {
			found = append(found, pass)
		}
		b.WriteString(Mask)
		rest = rest[at:]
	}
	b.WriteString(params(rest, urlParam, &found))
	return b.String(), found
}

// paramOnly reports whether the '@' that ends s sits in a parameter value
// (host:port/path?email=a@b): after a '?' or '#' that follows a path, the
// path after a plain host[:port]. Anything else (u:pa/ss@host, u:1?x@host)
// may be a password with an unescaped '/', '?' or '#'; an all-digit one
// before a '/' cannot be told from a port.
func paramOnly(s string) bool {
	q := strings.IndexAny(s, "?#")
	slash := strings.IndexByte(s, '/')
	if q < 0 || slash < 0 || slash > q {
		return false
	}
	host := s[:slash]
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host[:i], "]") && strings.Contains(host[:i], ":") {
		return false // two colons outside [IPv6]
	} else if i >= 0 {
		for _, c := range host[i+1:] {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// params replaces the values of secret parameters that re finds in s.
func params(s string, re *regexp.Regexp, found *[]string) string {
	return re.ReplaceAllStringFunc(s, func(m string) string {
		sub := re.FindStringSubmatch(m)
		var lead, name, eq, value string
		if len(sub) == 4 { // urlParam
			lead, name, eq, value = sub[1], sub[2], "=", sub[3]
		} else {
			lead, name, eq, value = sub[1], sub[2], sub[3], sub[4]
		}
		key := name
		if k, err := url.QueryUnescape(name); err == nil {
			key = k
		}
		if !Key(key) || value == "" {
			return m
		}
		*found = append(*found, value)
		if v, ok := strings.CutPrefix(value, "'"); ok {
			v = strings.TrimSuffix(v, "'")
			*found = append(*found, v, strings.NewReplacer(`\\`, `\`, `\'`, `'`).Replace(v))
		}
		return lead + name + eq + Mask
	})
}
