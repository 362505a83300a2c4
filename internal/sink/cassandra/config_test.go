package cassandra

import (
	"errors"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

func TestParseURL(t *testing.T) {
	cases := []struct {
		url   string
		check func(t *testing.T, c Config)
	}{
		{"cassandra://db1", func(t *testing.T, c Config) {
			if strings.Join(c.Hosts, ",") != "db1:9042" || c.Keyspace != "spark_streams" || c.Consistency != gocql.LocalQuorum ||
				c.Replication.CQL() != "{'class': 'SimpleStrategy', 'replication_factor': 1}" || c.Concurrency != 32 {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{"cassandra://u:p%40ss@h1,h2:9043/users_ks?consistency=ONE&timeout=3s", func(t *testing.T, c Config) {
			if strings.Join(c.Hosts, ",") != "h1:9042,h2:9043" || c.Username != "u" || c.Password != "p@ss" ||
				c.Keyspace != "users_ks" || c.Consistency != gocql.One || c.Timeout != 3*time.Second {
				t.Errorf("got %+v", c)
			}
			if strings.Contains(c.String(), "p@ss") || strings.Contains(c.String(), "p%40ss") {
				t.Errorf("String() shows the password: %s", c)
			}
		}},
		{"cassandra://h/ks?dc=DC1", func(t *testing.T, c Config) {
			if c.DataCenter != "DC1" || c.Replication.CQL() != "{'class': 'NetworkTopologyStrategy', 'DC1': 3}" {
				t.Errorf("dc default replication: %+v", c.Replication)
			}
		}},
		{"cassandra://h?replication=NetworkTopologyStrategy:dc2=2,dc1=3&consistency=each_quorum", func(t *testing.T, c Config) {
			if c.Keyspace != DefaultKeyspace || c.Consistency != gocql.EachQuorum ||
				c.Replication.CQL() != "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}" {
				t.Errorf("got %+v %s", c, c.Replication.CQL())
			}
		}},
		{"cassandra://[::1]:9042/ks?replication=SimpleStrategy:3&concurrency=4&retries=0", func(t *testing.T, c Config) {
			if c.Hosts[0] != "[::1]:9042" || c.Replication.Factor != 3 || c.Concurrency != 4 || c.Retries != 0 {
				t.Errorf("got %+v", c)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			c, err := ParseURL(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	cases := []struct{ url, want string }{
		{"postgres://h/db", "must start with cassandra://"},
		{"cassandra:///ks", "no hosts"},
		{"cassandra://h:notaport/ks", "bad port"},
		{"cassandra://h:70000/ks", "bad port"},
		{"cassandra://h/ks-with-dash", "not a CQL identifier"},
		{"cassandra://h/ks?consistency=strong", `consistency "strong"`},
		{"cassandra://h/ks?consistency=serial", `consistency "serial"`},
		{"cassandra://h/ks?replication=SimpleStrategy", "want SimpleStrategy:N"},
		{"cassandra://h/ks?replication=SimpleStrategy:0", "not an integer in 1..99"},
		{"cassandra://h/ks?replication=Everywhere:3", "not SimpleStrategy or NetworkTopologyStrategy"},
		{"cassandra://h/ks?replication=NetworkTopologyStrategy:dc1", `"dc1" is not dc=N`},
		{"cassandra://h/ks?replication=NetworkTopologyStrategy:dc'1=3", "is not dc=N"},
		{"cassandra://h/ks?timeout=soon", "not a positive duration"},
		{"cassandra://h/ks?concurrency=0", "not an integer in 1..1024"},
		{"cassandra://h/ks?consistancy=one", `unknown parameter "consistancy"`},
		{"cassandra://h/ks?retry_min=2s&retry_max=1s", "above retry_max"},
		{"cassandra://bob@h/ks", "has no password"},
		{"cassandra://bob:s3cret%zz@h/ks", "badly escaped"},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			_, err := ParseURL(tc.url)
			if err == nil {
				t.Fatalf("ParseURL(%q) succeeded, want an error containing %q", tc.url, tc.want)
			}
			if !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseURL(%q) = %v, want an ErrBadURL containing %q", tc.url, err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}
