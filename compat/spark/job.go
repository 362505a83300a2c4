// Package spark runs the original tutorial's consumer, its Spark Structured
// Streaming job (spark_stream.py), on what `userstream produce --format
// json` writes, on the embedded broker and on Apache Kafka 4. It needs
// pyspark (compat/requirements-spark.txt, installed by `scripts/compat.sh
// spark` into the virtual environment it names in USERSTREAM_SPARK_PYTHON),
// the jars of internal/engines/poms/spark-kafka.xml (resolved with Maven) and
// PostgreSQL (USERSTREAM_TEST_POSTGRES). It is too heavy for the quick CI:
// `make compat` runs it, and docs/compatibility.md has its last result.
package spark

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/userstream/userstream/internal/engines"
)

// Topic is the topic the job reads by default.
const Topic = "users_created"

// columns are the original's created_users columns, in its order.
var Columns = []string{"id", "first_name", "last_name", "gender", "address", "post_code",
	"email", "username", "registered_date", "phone", "picture"}

// Script is spark_stream.py's path (beside this file in the source tree,
// where the tests that run it are).
func Script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "spark_stream.py")
}

// Python is the interpreter of the virtual environment scripts/compat.sh
// built from requirements-spark.txt; the test skips without it, since pyspark
// is installed nowhere else.
func Python(t testing.TB) string {
	t.Helper()
	py := os.Getenv("USERSTREAM_SPARK_PYTHON")
	if py == "" {
		t.Skip("USERSTREAM_SPARK_PYTHON is not set: run scripts/compat.sh spark (make compat), which installs pyspark from compat/requirements-spark.txt")
	}
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("USERSTREAM_SPARK_PYTHON: %v", err)
	}
	return py
}

// PostgresURL is USERSTREAM_TEST_POSTGRES; the test skips without it.
func PostgresURL(t testing.TB) string {
	t.Helper()
	pg := os.Getenv("USERSTREAM_TEST_POSTGRES")
	if pg == "" {
		t.Skip("USERSTREAM_TEST_POSTGRES is not set: the Spark job writes to PostgreSQL")
	}
	return pg
}

// Jars resolves the Kafka source and the JDBC driver with Maven (the pom
// spark-kafka of package engines) and returns them as spark.jars wants
// them, comma-separated.
func Jars(t testing.TB) string {
	t.Helper()
	if err := engines.Available(); err != nil {
		t.Skipf("no Maven here to resolve Spark's Kafka source: %v", err)
	}
	cp, err := engines.Classpath(context.Background(), "spark-kafka")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(filepath.SplitList(strings.TrimSpace(cp)), ",")
}

// CreateTable creates created_users with the original's columns, then
// extra (column definitions such as "stored_at timestamptz DEFAULT now()"),
// in a schema of its own (CreateSchema) and returns its qualified name.
func CreateTable(t testing.TB, pg string, extra ...string) string {
	t.Helper()
	schema := CreateSchema(t, pg)
	cols := []string{"id uuid PRIMARY KEY"}
	for _, c := range Columns[1:] {
		cols = append(cols, c+" text")
	}
	cols = append(cols, extra...)
	ExecSQL(t, pg, "CREATE TABLE "+pgx.Identifier{schema, "created_users"}.Sanitize()+" ("+strings.Join(cols, ", ")+")")
	return schema + ".created_users"
}

// CreateSchema creates an empty schema, dropped with what it holds when the
// test ends, and returns its name.
func CreateSchema(t testing.TB, pg string) string {
	t.Helper()
	schema := fmt.Sprintf("spark_streams_%d", time.Now().UnixNano())
	ident := pgx.Identifier{schema}.Sanitize()
	ExecSQL(t, pg, "CREATE SCHEMA "+ident)
	t.Cleanup(func() { ExecSQL(t, pg, "DROP SCHEMA "+ident+" CASCADE") })
	return schema
}

// ExecSQL runs one statement on its own connection, failing the test on error.
func ExecSQL(t testing.TB, pg, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Options are spark_stream.py's switches.
type Options struct {
	Topic           string  // default Topic
	AvailableNow    bool    // store what the topic holds, then stop and print a summary
	Trigger         float64 // seconds between micro-batches (0: Spark's default trigger)
	ConsumerOffsets bool    // find offsets with a consumer (the embedded broker needs it)
}

// JDBC turns a postgres:// URL into a JDBC URL and its login, which JDBC
// clients take apart from the URL. stringtype=unspecified lets the server
// cast the strings JDBC writers send to uuid and timestamptz columns.
func JDBC(pg string) (jdbc, user, password string, err error) {
	u, err := url.Parse(pg)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", "", "", fmt.Errorf("USERSTREAM_TEST_POSTGRES is not a postgres:// URL")
	}
	q := u.Query()
	q.Set("stringtype", "unspecified")
	password, _ = u.User.Password()
	return "jdbc:postgresql://" + u.Host + u.Path + "?" + q.Encode(), u.User.Username(), password, nil
}

// JobArgs is the command line of spark_stream.py for a topic on kafka and
// a table of pg, and its environment: the database login goes in JDBC_USER
// and JDBC_PASSWORD, never on the command line.
func JobArgs(pg, jars, kafka, table, checkpoint string, o Options) (args, env []string, err error) {
	jdbc, user, pass, err := JDBC(pg)
	if err != nil {
		return nil, nil, err
	}
	if o.Topic == "" {
		o.Topic = Topic
	}
	env = []string{"JDBC_USER=" + user, "JDBC_PASSWORD=" + pass}
	args = []string{"--bootstrap", kafka, "--topic", o.Topic, "--jdbc-url", jdbc, "--table", table,
		"--checkpoint", checkpoint, "--jars", jars}
	if o.AvailableNow {
		args = append(args, "--available-now")
	}
	if o.Trigger > 0 {
		args = append(args, "--trigger", strconv.FormatFloat(o.Trigger, 'f', -1, 64))
	}
	if o.ConsumerOffsets {
		args = append(args, "--consumer-offsets")
	}
	return args, env, nil
}

// JobCommand is spark_stream.py (beside this file) under py, in dir, leading
// its own process group and killed if the calling process dies.
func JobCommand(py, dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(py, append([]string{Script()}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}
