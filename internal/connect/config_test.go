package connect

import (
	"errors"
	"strings"
	"testing"

	"github.com/userstream/userstream/internal/redact"
)

func jdbcConfig(extra ...string) map[string]string {
	c := map[string]string{
		"name": "pg", "connector.class": ClassJDBC, "topics": "users_created",
		"connection.url": "jdbc:postgresql://db:5432/users?user=u&password=secret",
		"insert.mode":    "upsert", "pk.mode": "record_value", "pk.fields": "id",
		"table.name.format": Table, "auto.create": "true",
		"value.converter": "org.apache.kafka.connect.json.JsonConverter",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			delete(c, extra[i])
			continue
		}
		c[extra[i]] = extra[i+1]
	}
	return c
}

func cassandraConfig(extra ...string) map[string]string {
	c := map[string]string{
		"name": "cass", "connector.class": ClassCassandra, "topics": "users_created",
		"contactPoints": "cassandra", "port": "9042", "loadBalancing.localDc": "datacenter1",
		"topic.users_created.spark_streams.created_users.mapping": "id=value.id, first_name=value.first_name",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			delete(c, extra[i])
			continue
		}
		c[extra[i]] = extra[i+1]
	}
	return c
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  map[string]string
		want string // the key the only error names; "" for none
	}{
		{"jdbc ok", jdbcConfig(), ""},
		{"sqlite ok", jdbcConfig("connection.url", "jdbc:sqlite:/tmp/u.db"), ""},
		{"unknown key", jdbcConfig("delete.enabled", "true"), "delete.enabled"},
		{"bad insert.mode", jdbcConfig("insert.mode", "insert"), "insert.mode"},
		{"bad pk.fields", jdbcConfig("pk.fields", "email"), "pk.fields"},
		{"bad table", jdbcConfig("table.name.format", "people"), "table.name.format"},
		{"bad url", jdbcConfig("connection.url", "jdbc:mysql://db/x"), "connection.url"},
		{"missing url", jdbcConfig("connection.url", ""), "connection.url"},
		{"topics and regex", jdbcConfig("topics.regex", "users.*"), "topics"},
		{"dlq without all", jdbcConfig("errors.deadletterqueue.topic.name", "dlq"), "errors.deadletterqueue.topic.name"},
		{"bad tolerance", jdbcConfig("errors.tolerance", "some"), "errors.tolerance"},
		{"bad tasks.max", jdbcConfig("tasks.max", "0"), "tasks.max"},
		{"unknown class", jdbcConfig("connector.class", "com.example.Sink", "connection.url", "", "insert.mode", "", "pk.mode", "", "pk.fields", "", "table.name.format", "", "auto.create", ""), "connector.class"},
		{"cassandra ok", cassandraConfig(), ""},
		{"cassandra jdbc key", cassandraConfig("insert.mode", "upsert"), "insert.mode"},
		{"cassandra other table", cassandraConfig("topic.users_created.spark_streams.created_users.mapping", "", "topic.users_created.ks.people.mapping", "id=value.id"), "topic.users_created.ks.people.mapping"},
		{"cassandra mapping without id", cassandraConfig("topic.users_created.spark_streams.created_users.mapping", "first_name=value.first_name"), "topic.users_created.spark_streams.created_users.mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vi := Validate(tc.cfg["connector.class"], tc.cfg)
			errs := vi.Errors()
			if tc.want == "" {
				if vi.ErrorCount != 0 {
					t.Fatalf("errors: %v", errs)
				}
				return
			}
			if vi.ErrorCount != 1 || len(errs) != 1 || !strings.HasPrefix(errs[0], tc.want+": ") {
				t.Fatalf("errors = %v (count %d), want one naming %s", errs, vi.ErrorCount, tc.want)
			}
			_, err := Parse(tc.cfg)
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want a ConfigError naming %s", err, tc.want)
			}
		})
	}
}

func TestParseSinkURL(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  map[string]string
		want string
	}{
		{"postgres query creds", jdbcConfig(), "postgres://u:secret@db:5432/users"},
		{"postgres key creds", jdbcConfig("connection.url", "jdbc:postgresql://db:5432/users?sslmode=disable", "connection.user", "a", "connection.password", "p w"),
			"postgres://a:p%20w@db:5432/users?sslmode=disable"},
		{"sqlite", jdbcConfig("connection.url", "jdbc:sqlite:./data/u.db"), "sqlite:./data/u.db"},
		{"cassandra", cassandraConfig(), "cassandra://cassandra:9042/spark_streams?dc=datacenter1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if s.SinkURL != tc.want {
				t.Fatalf("SinkURL = %q, want %q", s.SinkURL, tc.want)
			}
		})
	}
}

func TestParseMappingKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want Mapping
		ok   bool
	}{
		{"topic.users_created.spark_streams.created_users.mapping", Mapping{"users_created", "spark_streams", "created_users"}, true},
		{"topic.a.b.c.ks.t.mapping", Mapping{"a.b.c", "ks", "t"}, true},
		{"topic.users_created.created_users.mapping", Mapping{}, false},
		{"topic.x.ks.t.codec.locale", Mapping{}, false},
	} {
		got, ok := ParseMappingKey(tc.key)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseMappingKey(%q) = %v, %v; want %v, %v", tc.key, got, ok, tc.want, tc.ok)
		}
	}
}

// TestSecretsAreHidden: the configs the API returns never carry a
// password, and a config PUT back as returned keeps the stored secrets.
func TestSecretsAreHidden(t *testing.T) {
	stored := map[string]string{
		"connection.url":      "jdbc:postgresql://db:5432/users?user=u&password=s3cret&sslmode=disable",
		"connection.password": "hunter2", "auth.password": "cass-pw", "connection.user": "u",
		"sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="jaas-pw";`,
		"backup.url":       "jdbc:postgresql://u:pw2@db:5432/users",
	}
	shown := redacted(stored)
	if shown["connection.password"] != redact.Hidden {
		t.Errorf("connection.password = %q, want %q", shown["connection.password"], redact.Hidden)
	}
	for k, v := range shown {
		for _, secret := range []string{"s3cret", "hunter2", "cass-pw", "jaas-pw", "pw2"} {
			if strings.Contains(v, secret) {
				t.Errorf("%s = %q shows a secret", k, v)
			}
		}
	}
	if shown["connection.user"] != "u" || !strings.Contains(shown["connection.url"], "sslmode=disable") {
		t.Errorf("redacted too much: %v", shown)
	}
	back := unredacted(shown, stored)
	for k, v := range stored {
		if back[k] != v {
			t.Errorf("PUT back: %s = %q, want the stored %q", k, back[k], v)
		}
	}
	changed := unredacted(map[string]string{"connection.password": "new", "connection.url": "jdbc:sqlite:/x.db"}, stored)
	if changed["connection.password"] != "new" || changed["connection.url"] != "jdbc:sqlite:/x.db" {
		t.Errorf("a new secret must replace the stored one: %v", changed)
	}
}
