package redact_test

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"testing"

	"github.com/userstream/userstream/internal/redact"
)

func TestURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"sqlite:./data/users.db", "sqlite:./data/users.db"},
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"},
		// The example: a password in the query.
		{"postgres://postgres@127.0.0.1:5432/postgres?password=hunter2&sslmode=disable",
			"postgres://postgres@127.0.0.1:5432/postgres?password=xxxxx&sslmode=disable"},
		{"postgres://u:hunter2@h:5432/db", "postgres://u:xxxxx@h:5432/db"},
		{"postgresql://u:p%40ss@h/db?sslpassword=kp&sslkey=/k.pem&sslmode=verify-full",
			"postgresql://u:xxxxx@h/db?sslpassword=xxxxx&sslkey=/k.pem&sslmode=verify-full"},
		{"postgres://h/db?pass%77ord=x", "postgres://h/db?pass%77ord=xxxxx"},
		{"postgres://u:p@ss@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u:@h/db", "postgres://u:xxxxx@h/db"},
		{"cassandra://cassandra:pw@c1:9042,c2/spark_streams?consistency=one", "cassandra://cassandra:xxxxx@c1:9042,c2/spark_streams?consistency=one"},
		{"http://reg:pw@127.0.0.1:8081", "http://reg:xxxxx@127.0.0.1:8081"},
		{"http://127.0.0.1:8088/api/?results=5&api_key=k1&seed=s", "http://127.0.0.1:8088/api/?results=5&api_key=xxxxx&seed=s"},
		{"http://127.0.0.1:8088/api/?email=a@b.c", "http://127.0.0.1:8088/api/?email=a@b.c"},
		{"https://h/cb#access_token=t0&x=1", "https://h/cb#access_token=xxxxx&x=1"},
		// JDBC forms: opaque to net/url, and ;-parameters.
		{"jdbc:postgresql://h/db?user=u&password=pw", "jdbc:postgresql://h/db?user=u&password=xxxxx"},
		{"jdbc:postgresql://u:pw@h/db", "jdbc:postgresql://u:xxxxx@h/db"},
		{"jdbc:sqlserver://h:1433;user=u;password=pw;db=x", "jdbc:sqlserver://h:1433;user=u;password=xxxxx;db=x"},
		{"jdbc:sqlite:/x.db", "jdbc:sqlite:/x.db"},
		// URLs that do not parse, or whose user info ends past the host.
		{"postgres://u:pa/ss@h/db", "postgres://xxxxx@h/db"},
		{"postgres://u:1?x@h/db", "postgres://xxxxx@h/db"},
		{"postgres://u:p%zz@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u:p w@h/db?password=a b&x=1", "postgres://u:xxxxx@h/db?password=xxxxx&x=1"},
		{"://u:pw@h", "://u:xxxxx@h"},
		// libpq keyword/value strings.
		{"host=h port=5432 password=pw dbname=d", "host=h port=5432 password=xxxxx dbname=d"},
		{"host=h password = 'p w\\' x' user=u", "host=h password = xxxxx user=u"},
		{"host=h password='unclosed rest", "host=h password=xxxxx"},
		{"host=h sslpassword=kp sslkey=/k.pem", "host=h sslpassword=xxxxx sslkey=/k.pem"},
		{"not a url", "not a url"},
	} {
		if got := redact.URL(tt.in); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestKey(t *testing.T) {
	for k, want := range map[string]bool{
		"password": true, "connection.password": true, "sslpassword": true, "ssl.key.password": true,
		"sasl.jaas.config": true, "access_token": true, "client_secret": true, "api_key": true,
		"apikey": true, "key": true, "PWD": true, "auth": true, "aws.secret.access.key": true,
		"private-key": true, "ssl.keystore.password": true, "passphrase": true, "credentials": true,
		"connection.url": false, "connection.user": false, "key.converter": false, "sslkey": false,
		"sslcert": false, "topics": false, "tasks.max": false, "sslmode": false, "user": false,
		"key.converter.schemas.enable": false, "pk.fields": false, "author": false, "keyspace": false,
		"auth.username": false, "http.auth": true, "basic_auth": true, "db_pass": true, "aws.access.key": true, "key.id": false,
	} {
		if got := redact.Key(k); got != want {
			t.Errorf("Key(%q) = %v, want %v", k, got, want)
		}
	}
}

func TestError(t *testing.T) {
	addr := "http://reg:p%2Fw@127.0.0.1:1?token=t%20k"
	inner := fmt.Errorf("get %s: dial: %w", "http://reg:p/w@127.0.0.1:1?token=t k", fs.ErrNotExist)
	err := redact.Error(inner, addr)
	msg := err.Error()
	for _, s := range []string{"p/w", "p%2Fw", "t k", "t%20k"} {
		if strings.Contains(msg, s) {
			t.Errorf("Error(...) = %q holds %q", msg, s)
		}
	}
	if !strings.Contains(msg, "127.0.0.1:1") {
		t.Errorf("Error(...) = %q lost the host", msg)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(Error(...), fs.ErrNotExist) = false")
	}
	whole := redact.Error(fmt.Errorf("open %s: refused", addr), addr).Error()
	if want := "open " + redact.URL(addr) + ": refused"; whole != want {
		t.Errorf("Error(...) = %q, want %q", whole, want)
	}
	if redact.Error(nil, addr) != nil {
		t.Error("Error(nil) is not nil")
	}
	plain := errors.New("x")
	if redact.Error(plain, "http://h/") != plain {
		t.Error("Error without secrets wrapped its error")
	}
}

func TestJSON(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		changed  bool
	}{
		{`{"properties":{"connection.password":"pw","connection.url":"jdbc:postgresql://h/db?password=p2","tasks.max":1,"n":1.50}}`,
			`{"properties":{"connection.password":"[hidden]","connection.url":"jdbc:postgresql://h/db?password=xxxxx","n":1.50,"tasks.max":1}}`, true},
		{`{"tokens":["a","b"],"list":["http://u:pw@h/"]}`, `{"list":["http://u:xxxxx@h/"],"tokens":["[hidden]","[hidden]"]}`, true},
		{`"postgres://u:pw@h/db"`, `"postgres://u:xxxxx@h/db"`, true},
		{`{"z":1, "a":"http://h/"}`, `{"z":1, "a":"http://h/"}`, false},
		{`{"password":""}`, `{"password":""}`, false},
		{`not json`, `not json`, false},
		{`{"a":1} {"b":2}`, `{"a":1} {"b":2}`, false},
	} {
		got, changed := redact.JSON([]byte(tt.in))
		if string(got) != tt.want || changed != tt.changed {
			t.Errorf("JSON(%s) = %s, %v; want %s, %v", tt.in, got, changed, tt.want, tt.changed)
		}
	}
}

// FuzzURL: whatever the secret, no form of it survives in a redacted
// address of any shape that can carry it, nor in an error quoting it.
func FuzzURL(f *testing.F) {
	f.Add("u", "hunter2", "h:5432")
	f.Add("", "p@ss:w/o?r#d", "[::1]:5432")
	f.Add("us er", "'quote\\' x", "h")
	f.Add("u", "%zz&x=1;y", "h,h2:9042")
	f.Fuzz(func(t *testing.T, user, pass, host string) {
		secret := "S3cR" + pass
		if strings.Contains(user+host, "S3cR") || strings.ContainsAny(host, "@/?#;&= \t\n") {
			return // the secret is the secret's alone; a host is a host
		}
		qs := url.Values{"password": {secret}, "sslmode": {"disable"}}.Encode()
		forms := []string{
			(&url.URL{Scheme: "postgres", User: url.UserPassword(user, secret), Host: host, Path: "/db", RawQuery: "sslmode=disable"}).String(),
			"postgres://" + url.PathEscape(host) + "/db?" + qs,
			(&url.URL{Scheme: "cassandra", User: url.UserPassword(user, secret), Host: host + ",h2:9042", Path: "/ks"}).String(),
			"jdbc:postgresql://" + url.PathEscape(host) + "/db?user=" + url.QueryEscape(user) + "&" + qs,
			"jdbc:sqlserver://" + url.PathEscape(host) + ";password=" + url.QueryEscape(secret) + ";db=x",
			"http://" + url.PathEscape(host) + "/api/?" + url.Values{"api_key": {secret}}.Encode(),
			"host=h password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(secret) + "' dbname=d",
			// Unescaped, as a user may type it by mistake.
			"postgres://u:" + secret + "@h:5432/db",
		}
		for _, raw := range forms {
			if strings.ContainsAny(secret, " \t\n\v\f\r'\\") && strings.HasPrefix(raw, "postgres://u:") {
				continue // no URL parser reads such a password either
			}
			got := redact.URL(raw)
			for _, s := range []string{secret, url.PathEscape(secret), url.QueryEscape(secret)} {
				if strings.Contains(got, s) {
					t.Fatalf("URL(%q) = %q holds the secret %q", raw, got, s)
				}
			}
			msg := redact.Error(errors.New("open "+raw+": "+secret+" refused"), raw).Error()
			if strings.Contains(msg, secret) {
				t.Fatalf("Error of %q = %q holds the secret", raw, msg)
			}
		}
	})
}
