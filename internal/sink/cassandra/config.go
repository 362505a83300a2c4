package cassandra

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
	"github.com/userstream/userstream/internal/redact"
)

// DefaultKeyspace is the keyspace used when the URL names none, as in the
// original pipeline.
const DefaultKeyspace = "spark_streams"

// DefaultPort is the CQL native protocol port used for hosts given without
// one.
const DefaultPort = 9042

// ErrBadURL is matched (errors.Is) by every error ParseURL returns.
var ErrBadURL = errors.New("bad cassandra sink URL")

// Replication is how the keyspace is replicated when the sink creates it.
// It has no effect on a keyspace that already exists.
type Replication struct {
	// Class is "SimpleStrategy" or "NetworkTopologyStrategy".
	Class string
	// Factor is the replication factor of SimpleStrategy.
	Factor int
	// DataCenters maps data-centre names to replication factors for
	// NetworkTopologyStrategy.
	DataCenters map[string]int
}

// CQL returns the replication map literal for CREATE KEYSPACE.
func (r Replication) CQL() string {
	if r.Class == "SimpleStrategy" {
		return fmt.Sprintf("{'class': 'SimpleStrategy', 'replication_factor': %d}", r.Factor)
	}
	dcs := make([]string, 0, len(r.DataCenters))
	for dc := range r.DataCenters {
		dcs = append(dcs, dc)
	}
	slices.Sort(dcs)
	var b strings.Builder
	b.WriteString("{'class': 'NetworkTopologyStrategy'")
	for _, dc := range dcs {
		fmt.Fprintf(&b, ", '%s': %d", dc, r.DataCenters[dc])
	}
	b.WriteString("}")
	return b.String()
}

// String gives the replication in the URL's notation.
func (r Replication) String() string {
	if r.Class == "SimpleStrategy" {
		return fmt.Sprintf("SimpleStrategy:%d", r.Factor)
	}
	dcs := make([]string, 0, len(r.DataCenters))
	for dc, n := range r.DataCenters {
		dcs = append(dcs, fmt.Sprintf("%s=%d", dc, n))
	}
	slices.Sort(dcs)
	return "NetworkTopologyStrategy:" + strings.Join(dcs, ",")
}

// Config is a parsed sink URL.
type Config struct {
	// Hosts are the contact points, each host:port.
	Hosts    []string
	Username string
	Password string
	Keyspace string
	// Consistency of every read and write (default LOCAL_QUORUM).
	Consistency gocql.Consistency
	// DataCenter, when set, makes the driver prefer hosts of this data
	// centre (DC-aware fallback under token-aware routing).
	DataCenter  string
	Replication Replication
	// replicationFromDC says Replication is the default for DataCenter
	// (3 replicas there), not given by the URL: the sink lowers it to the
	// number of nodes the data centre has when it creates the keyspace.
	replicationFromDC bool
	// Timeout of one request (default 10s); ConnectTimeout of one
	// connection attempt (default 5s).
	Timeout        time.Duration
	ConnectTimeout time.Duration
	// Concurrency is how many writes Upsert keeps in flight (default 32).
	Concurrency int
	// Retries is how many times an operation is retried after a retryable
	// failure (timeouts, unavailable, lost connections, no hosts), with
	// exponential backoff from RetryMin to RetryMax (defaults 8, 100ms, 5s).
	Retries            int
	RetryMin, RetryMax time.Duration
	// ReconnectInterval is how often the driver tries hosts it saw go down
	// (default 2s).
	ReconnectInterval time.Duration
	// RecreateAfter is how long "no hosts available" may last before the
	// sink replaces its driver session with a new one (default 10s).
	RecreateAfter time.Duration
}

// String returns the configuration as a URL with the password replaced by
// redact.Mask, safe for logs and errors.
func (c Config) String() string {
	u := url.URL{Scheme: "cassandra", Host: strings.Join(c.Hosts, ","), Path: "/" + c.Keyspace}
	if c.Username != "" {
		if c.Password != "" {
			u.User = url.UserPassword(c.Username, redact.Mask)
		} else {
			u.User = url.User(c.Username)
		}
	}
	q := url.Values{}
	q.Set("consistency", strings.ToLower(c.Consistency.String()))
	if c.DataCenter != "" {
		q.Set("dc", c.DataCenter)
	}
	q.Set("replication", c.Replication.String())
	u.RawQuery = q.Encode()
	return u.String()
}

var identRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,47}$`)

// ParseURL reads a sink URL:
//
//	cassandra://[user:pass@]host1[:port],host2[:port]/keyspace?param=value&...
//
// Hosts without a port use 9042; the keyspace defaults to spark_streams.
// Parameters: consistency (any, one, two, three, quorum, all,
// local_quorum, each_quorum, local_one; default local_quorum), dc,
// replication (SimpleStrategy:N or NetworkTopologyStrategy:dc1=N,dc2=M;
// default SimpleStrategy:1, or NetworkTopologyStrategy:<dc>=3 when dc is
// set, lowered to the data centre's node count when it has fewer), timeout, connect_timeout, concurrency, retries, retry_min,
// retry_max, reconnect_interval, recreate_after. An unknown parameter is an
// error, so a typo does not go unnoticed. Errors match ErrBadURL and never
// contain the password.
func ParseURL(raw string) (Config, error) {
	bad := func(format string, a ...any) (Config, error) {
		return Config{}, fmt.Errorf("%w: %s", ErrBadURL, fmt.Sprintf(format, a...))
	}
	rest, ok := strings.CutPrefix(raw, "cassandra://")
	if !ok {
		return bad("must start with cassandra://")
	}
	// The user info ends at the last '@' anywhere, so that a password
	// with an unescaped '/' or '?' is read as one, never as a host or a
	// keyspace that an error would quote.
	var userinfo string
	at := strings.LastIndexByte(rest, '@')
	hasUser := at >= 0
	if hasUser {
		userinfo, rest = rest[:at], rest[at+1:]
	}
	authority, tail, _ := strings.Cut(rest, "/")
	if i := strings.IndexByte(authority, '?'); i >= 0 {
		authority, tail = authority[:i], "?"+authority[i+1:]
	}
	c := Config{
		Keyspace: DefaultKeyspace, Consistency: gocql.LocalQuorum,
		Timeout: 10 * time.Second, ConnectTimeout: 5 * time.Second, Concurrency: 32,
		Retries: 8, RetryMin: 100 * time.Millisecond, RetryMax: 5 * time.Second,
		ReconnectInterval: 2 * time.Second, RecreateAfter: 10 * time.Second,
	}
	if hasUser {
		user, pass, hasPass := strings.Cut(userinfo, ":")
		var err error
		if c.Username, err = url.PathUnescape(user); err != nil || c.Username == "" {
			return bad("user name is empty or badly escaped")
		}
		if c.Password, err = url.PathUnescape(pass); err != nil {
			return bad("password is badly escaped (percent-encode special characters)")
		}
		if !hasPass {
			return bad("user %q has no password (use user:password@)", c.Username)
		}
	}
	if authority == "" {
		return bad("no hosts (want cassandra://host1,host2:9042/keyspace)")
	}
	for _, h := range strings.Split(authority, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			host, port = h, strconv.Itoa(DefaultPort)
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return bad("host %q has a bad port", h)
		}
		if host == "" || strings.ContainsAny(host, " /") || (strings.Contains(host, ":") && net.ParseIP(host) == nil) {
			return bad("bad host %q", h)
		}
		c.Hosts = append(c.Hosts, net.JoinHostPort(host, port))
	}
	path, rawQuery, _ := strings.Cut(tail, "?")
	if path = strings.TrimSuffix(path, "/"); path != "" {
		if !identRE.MatchString(path) {
			return bad("keyspace %q is not a CQL identifier (a letter, then up to 47 letters, digits or _)", path)
		}
		c.Keyspace = strings.ToLower(path)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return bad("query string: %v", err)
	}
	var replication string
	for k, vs := range q {
		v := vs[len(vs)-1]
		dur := func(dst *time.Duration) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("%s=%q is not a positive duration (e.g. 10s)", k, v)
			}
			*dst = d
			return nil
		}
		num := func(dst *int, min, max int) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < min || n > max {
				return fmt.Errorf("%s=%q is not an integer in %d..%d", k, v, min, max)
			}
			*dst = n
			return nil
		}
		var err error
		switch k {
		case "consistency":
			c.Consistency, err = parseConsistency(v)
		case "dc":
			if v == "" {
				err = errors.New("dc is empty")
			}
			c.DataCenter = v
		case "replication":
			replication = v
		case "timeout":
			err = dur(&c.Timeout)
		case "connect_timeout":
			err = dur(&c.ConnectTimeout)
		case "concurrency":
			err = num(&c.Concurrency, 1, 1024)
		case "retries":
			err = num(&c.Retries, 0, 100)
		case "retry_min":
			err = dur(&c.RetryMin)
		case "retry_max":
			err = dur(&c.RetryMax)
		case "reconnect_interval":
			err = dur(&c.ReconnectInterval)
		case "recreate_after":
			err = dur(&c.RecreateAfter)
		default:
			err = fmt.Errorf("unknown parameter %q", k)
		}
		if err != nil {
			return bad("%v", err)
		}
	}
	if c.RetryMin > c.RetryMax {
		return bad("retry_min %s is above retry_max %s", c.RetryMin, c.RetryMax)
	}
	switch {
	case replication != "":
		if c.Replication, err = parseReplication(replication); err != nil {
			return bad("%v", err)
		}
	case c.DataCenter != "":
		c.Replication = Replication{Class: "NetworkTopologyStrategy", DataCenters: map[string]int{c.DataCenter: 3}}
		c.replicationFromDC = true
	default:
		c.Replication = Replication{Class: "SimpleStrategy", Factor: 1}
	}
	return c, nil
}

func parseConsistency(v string) (gocql.Consistency, error) {
	var c gocql.Consistency
	if err := c.UnmarshalText([]byte(strings.ToUpper(v))); err != nil || c == gocql.Serial || c == gocql.LocalSerial {
		return 0, fmt.Errorf("consistency %q is not one of any, one, two, three, quorum, all, local_quorum, each_quorum, local_one", v)
	}
	return c, nil
}

func parseReplication(v string) (Replication, error) {
	class, opts, ok := strings.Cut(v, ":")
	if !ok {
		return Replication{}, fmt.Errorf("replication %q: want SimpleStrategy:N or NetworkTopologyStrategy:dc1=N,dc2=M", v)
	}
	factor := func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 99 {
			return 0, fmt.Errorf("replication factor %q is not an integer in 1..99", s)
		}
		return n, nil
	}
	switch strings.ToLower(class) {
	case "simplestrategy", "simple":
		n, err := factor(opts)
		if err != nil {
			return Replication{}, fmt.Errorf("replication %q: %w", v, err)
		}
		return Replication{Class: "SimpleStrategy", Factor: n}, nil
	case "networktopologystrategy", "networktopology":
		r := Replication{Class: "NetworkTopologyStrategy", DataCenters: map[string]int{}}
		for _, kv := range strings.Split(opts, ",") {
			dc, n, ok := strings.Cut(kv, "=")
			if !ok || dc == "" || strings.ContainsAny(dc, "'\\ ") {
				return Replication{}, fmt.Errorf("replication %q: %q is not dc=N", v, kv)
			}
			f, err := factor(n)
			if err != nil {
				return Replication{}, fmt.Errorf("replication %q: %w", v, err)
			}
			r.DataCenters[dc] = f
		}
		return r, nil
	}
	return Replication{}, fmt.Errorf("replication class %q is not SimpleStrategy or NetworkTopologyStrategy", class)
}
