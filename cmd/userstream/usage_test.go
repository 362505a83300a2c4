package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestUsageErrors: wrong flags exit 2 with a message that names the flag.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown flag", []string{"produce", "--bogus"}, nil, "--bogus"},
		{"unbounded produce", []string{"produce"}, nil, "--users N or --duration D"},
		{"negative users", []string{"produce", "--users", "-1"}, nil, "--users"},
		{"batch over the API maximum", []string{"produce", "--users", "5", "--batch-size", "5001"}, nil, "--batch-size"},
		{"source not a URL", []string{"produce", "--users", "5", "--source", "ftp://x"}, nil, "--source"},
		{"avro without registry", []string{"produce", "--users", "5", "--schema-registry", "none", "--format", "avro"}, nil, "--format avro needs a Schema Registry"},
		{"bad format", []string{"produce", "--users", "5", "--format", "xml"}, nil, "--format"},
		{"registry not a URL", []string{"produce", "--users", "5", "--schema-registry", "127.0.0.1:8081"}, nil, "--schema-registry"},
		{"bad env value", []string{"produce"}, map[string]string{"USERSTREAM_USERS": "many"}, "USERSTREAM_USERS"},
		{"stream unknown sink", []string{"stream", "--sink", "mysql://db"}, nil, "unknown scheme \"mysql\""},
		{"stream empty sink", []string{"stream", "--sink", ""}, nil, "--sink is required"},
		{"stream zero batch", []string{"stream", "--batch-size", "0"}, nil, "--batch-size"},
		{"stream unknown group protocol", []string{"stream", "--group-protocol", "eager"}, nil, "--group-protocol: \"eager\": give classic or consumer"},
		{"connect unknown group protocol", []string{"connect", "--group-protocol", "eager"}, map[string]string{"USERSTREAM_ADMIN_PASSWORD": "pw"}, "--group-protocol"},
		{"dev bad interval", []string{"dev", "--interval", "0s"}, nil, "--interval"},
		{"dev bad format", []string{"dev", "--format", "xml"}, nil, "--format"},
		{"dev avro without registry", []string{"dev", "--schema-registry", "none", "--format", "avro"}, nil, "--format avro needs a Schema Registry"},
		{"dev registry not a URL", []string{"dev", "--schema-registry", "127.0.0.1:8081"}, nil, "--schema-registry"},
		{"dev TLS for the embedded broker", []string{"dev", "--tls"}, nil, "--tls needs --brokers"},
		{"dev SASL from env for the embedded broker", []string{"dev"}, map[string]string{"USERSTREAM_SASL_MECHANISM": "PLAIN"}, "--sasl-mechanism needs --brokers"},
		{"bench too few users", []string{"bench", "--users", "10"}, nil, "--users"},
		{"bench zero write batch", []string{"bench", "--write-batch", "0"}, nil, "--write-batch"},
		{"log level", []string{"users", "count", "--log-level", "loud"}, nil, "--log-level"},
		{"no brokers", []string{"topics", "list", "--brokers", ""}, nil, "--brokers: empty"},
		{"sasl user without mechanism", []string{"topics", "list", "--sasl-user", "u", "--sasl-password", "p"}, nil, "--sasl-mechanism: not set"},
		{"cert without key", []string{"produce", "--users", "5", "--tls-cert", "c.pem"}, nil, "--tls-cert: given without its key file"},
		{"unknown command", []string{"nope"}, nil, "unknown command \"nope\""},
		{"users get not a UUID", []string{"users", "get", "abc"}, nil, "is not a UUID"},
		{"connect addr not host:port", []string{"connect", "--addr", "8083"}, nil, "--addr"},
		{"connect empty group id", []string{"connect", "--group-id", ""}, nil, "--group-id"},
		{"connect zero task-failed-after", []string{"connect", "--task-failed-after", "0s"}, nil, "--task-failed-after"},
		{"connect short session", []string{"connect", "--session-timeout", "100ms"}, nil, "--session-timeout"},
		{"connect bad metadata", []string{"connect", "--metadata", "mysql://x"}, nil, "--metadata"},
		{"connect registry not a URL", []string{"connect", "--schema-registry", "127.0.0.1:8081"}, nil, "--schema-registry"},
		{"web connect URL without a scheme", []string{"web", "--connect-url", "127.0.0.1:8083"}, nil, "--connect-url"},
		{"web sampling too often", []string{"web", "--sample-every", "1ms"}, nil, "--sample-every 1ms: want at least 100ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var out, errb bytes.Buffer
			code := run(context.Background(), tt.args, &out, &errb)
			if code != 2 {
				t.Fatalf("exit %d, want 2 (stderr %q)", code, errb.String())
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Errorf("stderr %q does not mention %q", errb.String(), tt.want)
			}
		})
	}
}

// TestSecretsStayOutOfErrors: a password in a sink, metadata or metrics URL
// never reaches the error a person reads.
func TestSecretsStayOutOfErrors(t *testing.T) {
	meta := "sqlite:" + t.TempDir() + "/meta.db"
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"users count, unreachable sink", []string{"users", "count", "--sink", "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=2"}, 1},
		{"web, unreachable sink", []string{"web", "--metadata", meta, "--admin-password", "admin-pass-1",
			"--sink", "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=2"}, 1},
		{"web, unreachable metadata", []string{"web", "--metadata", "postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=2"}, 1},
		{"web, metrics URL that does not parse", []string{"web", "--metadata", meta, "--admin-password", "admin-pass-1",
			"--sink", "sqlite:" + t.TempDir() + "/u.db", "--stream-metrics", "http://u:hunter2@127.0.0.1:bad/metrics"}, 2},
		{"web, connect URL that is not http", []string{"web", "--connect-url", "ftp://u:hunter2@127.0.0.1:8083/"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tt.args, &out, &errb)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, errb.String())
			}
			if strings.Contains(errb.String()+out.String(), "hunter2") {
				t.Fatalf("the password leaked: %s", errb.String())
			}
		})
	}
}
