package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgSchemas names the schemas a bench run creates in a PostgreSQL
// database, one a role, so that every measure starts from an empty table
// and nothing of the user's is touched; drop removes them.
type pgSchemas struct {
	names []string
	stamp string
}

// url returns base with its schema parameter set to a new schema for role.
func (p *pgSchemas) url(base, role string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("bench: the PostgreSQL URL does not parse")
	}
	if p.stamp == "" {
		p.stamp = fmt.Sprintf("%d_%d", os.Getpid(), time.Now().Unix())
	}
	name := "userstream_bench_" + role + "_" + p.stamp
	q := u.Query()
	q.Set("schema", name)
	u.RawQuery = q.Encode()
	p.names = append(p.names, name)
	return u.String(), nil
}

// drop removes every schema url named, with its tables. A failure is
// logged: the measures are done by then.
func (p *pgSchemas) drop(ctx context.Context, base string, log *slog.Logger) {
	if len(p.names) == 0 {
		return
	}
	u, err := url.Parse(base)
	if err != nil {
		return
	}
	q := u.Query()
	q.Del("schema")
	q.Del("upsert")
	u.RawQuery = q.Encode()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		log.Warn("bench: could not drop its PostgreSQL schemas", "schemas", p.names, "err", err)
		return
	}
	defer conn.Close(ctx)
	for _, name := range p.names {
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			log.Warn("bench: could not drop a PostgreSQL schema", "schema", name, "err", err)
		}
	}
}
