package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/userstream/userstream/internal/sink/sinktest"
	"github.com/userstream/userstream/internal/sink/sqlite"
	"github.com/userstream/userstream/internal/user"
)

// runUsers runs userstream with args and returns the exit status and output.
func runUsers(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// usersDB makes a SQLite sink holding Record(0..n-1) and returns its URL.
func usersDB(t *testing.T, n int) (string, []user.Record) {
	t.Helper()
	url := "sqlite:" + filepath.Join(t.TempDir(), "users.db")
	s, err := sqlite.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rs := sinktest.Records(0, n)
	if n > 0 {
		rs[0].Nat, rs[0].IngestedAt = "", time.Time{} // original shape: no nat, no time
		if err := s.Upsert(t.Context(), rs); err != nil {
			t.Fatal(err)
		}
	}
	return url, rs
}

func TestUsersCount(t *testing.T) {
	for _, n := range []int{0, 1, 37} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			url, _ := usersDB(t, n)
			code, out, errOut := runUsers(t, "users", "count", "--sink", url)
			if code != 0 || out != fmt.Sprintf("%d\n", n) {
				t.Fatalf("users count = exit %d, stdout %q, stderr %q; want exit 0 and %q", code, out, errOut, fmt.Sprintf("%d\n", n))
			}
		})
	}
}

func TestUsersSinkFromEnv(t *testing.T) {
	url, _ := usersDB(t, 4)
	t.Setenv("USERSTREAM_SINK", url)
	code, out, errOut := runUsers(t, "users", "count")
	if code != 0 || out != "4\n" {
		t.Fatalf("users count with USERSTREAM_SINK = exit %d, %q, %q; want 4", code, out, errOut)
	}
}

func TestUsersRecent(t *testing.T) {
	url, rs := usersDB(t, 12)
	// Newest first: Record(i) is ingested i ms after Record(i-1); rs[0] has no time.
	code, out, errOut := runUsers(t, "users", "recent", "3", "--sink", url)
	if code != 0 {
		t.Fatalf("users recent 3: exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("users recent 3 printed %d lines, want a header and 3 rows:\n%s", len(lines), out)
	}
	for i, want := range []user.Record{rs[11], rs[10], rs[9]} {
		if !strings.HasPrefix(lines[i+1], want.ID) || !strings.Contains(lines[i+1], want.Email) {
			t.Errorf("row %d = %q, want user %s (%s)", i, lines[i+1], want.ID, want.Email)
		}
	}

	code, out, errOut = runUsers(t, "users", "recent", "--json", "--sink", url)
	if code != 0 {
		t.Fatalf("users recent --json: exit %d, stderr %q", code, errOut)
	}
	lines = strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 10 {
		t.Fatalf("users recent --json printed %d lines, want the default 10", len(lines))
	}
	for i, line := range lines {
		got, err := user.DecodeJSON([]byte(line))
		if err != nil {
			t.Fatalf("line %d is not a user: %v", i, err)
		}
		want := rs[11-i]
		if got.ID != want.ID || got.PostCode != want.PostCode || !got.IngestedAt.Equal(want.IngestedAt) {
			t.Fatalf("line %d = %+v, want %+v", i, got, want)
		}
	}

	// The user with no ingested_at comes last, shown as "-".
	code, out, _ = runUsers(t, "users", "recent", "12", "--sink", url)
	lines = strings.Split(strings.TrimRight(out, "\n"), "\n")
	if code != 0 || len(lines) != 13 || !strings.HasPrefix(lines[12], rs[0].ID) || !strings.HasSuffix(lines[12], "-") {
		t.Fatalf("users recent 12: exit %d, last line %q; want user %s with no time", code, lines[len(lines)-1], rs[0].ID)
	}
}

func TestUsersGet(t *testing.T) {
	url, rs := usersDB(t, 5)
	want := rs[3]
	for _, args := range [][]string{
		{"users", "get", want.ID, "--sink", url},
		{"users", "get", strings.ToUpper(want.ID), "--sink", url, "--json"},
	} {
		code, out, errOut := runUsers(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errOut)
		}
		var got user.Record
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v printed no JSON user: %v\n%s", args, err, out)
		}
		if got != want {
			t.Fatalf("%v = %+v, want %+v", args, got, want)
		}
		if isJSON := args[len(args)-1] == "--json"; isJSON != (strings.Count(out, "\n") == 1) {
			t.Fatalf("%v: output has %d lines; want one line exactly with --json", args, strings.Count(out, "\n"))
		}
	}

	missing := sinktest.Record(99).ID
	code, out, errOut := runUsers(t, "users", "get", missing, "--sink", url)
	if code != 1 || out != "" || !strings.Contains(errOut, "no user with id "+missing) {
		t.Fatalf("users get (missing) = exit %d, stdout %q, stderr %q; want exit 1 and \"no user with id %s\"", code, out, errOut, missing)
	}
}

func TestUsersErrors(t *testing.T) {
	url, _ := usersDB(t, 1)
	missingFile := "sqlite:" + filepath.Join(t.TempDir(), "nope", "users.db")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no subcommand", []string{"users", "--sink", url}, 2, "name a subcommand"},
		{"unknown subcommand", []string{"users", "list", "--sink", url}, 2, `unknown subcommand "list"`},
		{"count with an argument", []string{"users", "count", "5", "--sink", url}, 2, "users count"},
		{"recent N not a number", []string{"users", "recent", "ten", "--sink", url}, 2, "whole number"},
		{"recent N zero", []string{"users", "recent", "0", "--sink", url}, 2, "whole number"},
		{"get without id", []string{"users", "get", "--sink", url}, 2, "users get"},
		{"unknown scheme", []string{"users", "count", "--sink", "mysql://u:hunter2@h/db"}, 2, "sqlite:PATH"},
		{"not a URL", []string{"users", "count", "--sink", "users.db"}, 2, "not a sink URL"},
		{"sqlite with no path", []string{"users", "count", "--sink", "sqlite:"}, 2, "names no file"},
		{"missing sqlite file", []string{"users", "count", "--sink", missingFile}, 1, "no SQLite database"},
		{"postgres unreachable", []string{"users", "count", "--sink", "postgres://u:hunter2@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"}, 1, "connect"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runUsers(t, c.args...)
			if code != c.code || !strings.Contains(errOut, c.want) {
				t.Fatalf("%v = exit %d, stderr %q; want exit %d and a message containing %q", c.args, code, errOut, c.code, c.want)
			}
			if out != "" {
				t.Errorf("stdout = %q, want nothing on failure", out)
			}
			if strings.Contains(errOut, "hunter2") {
				t.Errorf("the password leaked into the message: %q", errOut)
			}
		})
	}
	if _, err := os.Stat(strings.TrimPrefix(missingFile, "sqlite:")); err == nil {
		t.Error("users count created the missing SQLite file; it must only read")
	}
}

func TestUsersPostgres(t *testing.T) {
	base := os.Getenv("USERSTREAM_TEST_POSTGRES")
	if base == "" {
		t.Skip("USERSTREAM_TEST_POSTGRES is not set, so there is no PostgreSQL to test against")
	}
	schema := fmt.Sprintf("userscmd_%d", time.Now().UnixNano())
	url := base + "&schema=" + schema
	if !strings.Contains(base, "?") {
		url = base + "?schema=" + schema
	}
	s, err := openSink(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	rs := sinktest.Records(0, 7)
	if err := s.Upsert(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	s.Close()
	code, out, errOut := runUsers(t, "users", "count", "--sink", url)
	if code != 0 || out != "7\n" {
		t.Fatalf("users count (postgres) = exit %d, %q, %q; want 7", code, out, errOut)
	}
	code, out, errOut = runUsers(t, "users", "get", rs[2].ID, "--sink", url, "--json")
	if code != 0 || !strings.Contains(out, rs[2].Email) {
		t.Fatalf("users get (postgres) = exit %d, %q, %q", code, out, errOut)
	}
}
