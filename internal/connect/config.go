// Package connect is a Kafka Connect worker for our sinks: connectors are
// created and watched through Connect's REST API and run as stream tasks.
//
// Connector configs live in a compacted Kafka topic that every worker reads
// from the start; each worker runs every connector's tasks as members of the
// consumer group connect-<name>, so Kafka spreads the partitions over the
// workers and moves them when one dies. There is no other coordinator.
package connect

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/userstream/userstream/internal/redact"
)

// Connector classes.
const (
	ClassJDBC      = "io.confluent.connect.jdbc.JdbcSinkConnector"
	ClassCassandra = "com.datastax.oss.kafka.sink.CassandraSinkConnector"
)

// Table is the one table every plugin writes.
const Table = "created_users"

// Version is what GET / and GET /connector-plugins report.
const Version = "3.7.0-userstream"

// Plugin is what GET /connector-plugins lists.
type Plugin struct {
	Class   string `json:"class"`
	Type    string `json:"type"`
	Version string `json:"version"`
}

// Plugins lists the connector classes this worker runs.
func Plugins() []Plugin {
	return []Plugin{
		{Class: ClassCassandra, Type: "sink", Version: Version},
		{Class: ClassJDBC, Type: "sink", Version: Version},
	}
}

// Spec is a validated connector config, as a task needs it.
type Spec struct {
	Name       string
	Class      string
	Topics     []string
	TopicRegex string
	TasksMax   int
	SinkURL    string // a sinks.Open URL; contains the password, never log it
	// Tolerate is errors.tolerance=all: bad records go to DLQ (or are
	// dropped when DLQ is empty) instead of failing the task.
	Tolerate       bool
	DLQ            string
	ContextHeaders bool
	JSON           bool   // value.converter is JSON
	RegistryURL    string // value.converter.schema.registry.url; empty: the worker's default
}

// ConfigValue is one key's entry in a validation result.
type ConfigValue struct {
	Name              string   `json:"name"`
	Value             *string  `json:"value"`
	RecommendedValues []string `json:"recommended_values"`
	Errors            []string `json:"errors"`
	Visible           bool     `json:"visible"`
}

// ConfigDefinition describes a key.
type ConfigDefinition struct {
	Name          string   `json:"name"`
	Type          string   `json:"type"`
	Required      bool     `json:"required"`
	DefaultValue  *string  `json:"default_value"`
	Importance    string   `json:"importance"`
	Documentation string   `json:"documentation"`
	Group         string   `json:"group"`
	OrderInGroup  int      `json:"order_in_group"`
	Width         string   `json:"width"`
	DisplayName   string   `json:"display_name"`
	Dependents    []string `json:"dependents"`
}

// ConfigInfo pairs a definition with its value.
type ConfigInfo struct {
	Definition ConfigDefinition `json:"definition"`
	Value      ConfigValue      `json:"value"`
}

// ConfigInfos is Connect's validation result.
type ConfigInfos struct {
	Name       string       `json:"name"`
	ErrorCount int          `json:"error_count"`
	Groups     []string     `json:"groups"`
	Configs    []ConfigInfo `json:"configs"`
}

// Errors lists "key: problem" for each key with an error.
func (ci ConfigInfos) Errors() []string {
	var out []string
	for _, c := range ci.Configs {
		for _, e := range c.Value.Errors {
			out = append(out, c.Value.Name+": "+e)
		}
	}
	return out
}

// key is one accepted config key. check returns a problem or "".
type key struct {
	name, group, doc string
	def              *string
	required         bool
	recommended      []string
	check            func(v string) string
}

func str(s string) *string { return &s }

func oneOf(vals ...string) func(string) string {
	return func(v string) string {
		if slices.Contains(vals, v) {
			return ""
		}
		return fmt.Sprintf("unsupported value %q; supported: %s", v, strings.Join(vals, ", "))
	}
}

func boolean(v string) string {
	if v == "true" || v == "false" {
		return ""
	}
	return fmt.Sprintf("%q is not a boolean (true or false)", v)
}

func positiveInt(v string) string {
	if n, err := strconv.Atoi(v); err != nil || n < 1 {
		return fmt.Sprintf("%q is not a positive integer", v)
	}
	return ""
}

const (
	converterAvro = "io.confluent.connect.avro.AvroConverter"
	converterJSON = "org.apache.kafka.connect.json.JsonConverter"
	converterStr  = "org.apache.kafka.connect.storage.StringConverter"
)

// commonKeys are Connect's keys every plugin takes.
var commonKeys = []key{
	{name: "name", group: "Common", doc: "connector name", required: true},
	{name: "connector.class", group: "Common", doc: "connector class", required: true},
	{name: "tasks.max", group: "Common", def: str("1"), doc: "tasks this connector runs on each worker", check: positiveInt},
	{name: "topics", group: "Common", doc: "topics to consume, comma-separated"},
	{name: "topics.regex", group: "Common", doc: "a regex of topics to consume", check: func(v string) string {
		if _, err := regexp.Compile(v); err != nil {
			return err.Error()
		}
		return ""
	}},
	{name: "key.converter", group: "Common", doc: "keys are user ids; any of these is accepted", recommended: []string{converterStr, converterJSON, converterAvro},
		check: oneOf(converterStr, converterJSON, converterAvro)},
	{name: "key.converter.schemas.enable", group: "Common", check: boolean},
	{name: "key.converter.schema.registry.url", group: "Common"},
	{name: "value.converter", group: "Common", def: str(converterAvro), recommended: []string{converterAvro, converterJSON},
		check: oneOf(converterAvro, converterJSON)},
	{name: "value.converter.schemas.enable", group: "Common", check: oneOf("false")},
	{name: "value.converter.schema.registry.url", group: "Common", doc: "schema registry of the Avro converter"},
	{name: "errors.tolerance", group: "Error Handling", def: str("none"), recommended: []string{"none", "all"}, check: oneOf("none", "all")},
	{name: "errors.deadletterqueue.topic.name", group: "Error Handling", def: str("")},
	{name: "errors.deadletterqueue.topic.replication.factor", group: "Error Handling", check: positiveInt},
	{name: "errors.deadletterqueue.context.headers.enable", group: "Error Handling", def: str("false"), check: boolean},
	{name: "errors.log.enable", group: "Error Handling", def: str("false"), check: boolean},
	{name: "errors.log.include.messages", group: "Error Handling", def: str("false"), check: boolean},
}

var jdbcKeys = []key{
	{name: "connection.url", group: "Connection", required: true, doc: "jdbc:postgresql://host:port/db[?user=&password=] or jdbc:sqlite:PATH", check: func(v string) string {
		if _, err := jdbcURL(v, "", ""); err != nil {
			return err.Error()
		}
		return ""
	}},
	{name: "connection.user", group: "Connection"},
	{name: "connection.password", group: "Connection"},
	{name: "insert.mode", group: "Writes", def: str("upsert"), recommended: []string{"upsert"}, check: oneOf("upsert")},
	{name: "pk.mode", group: "Data Mapping", def: str("record_value"), recommended: []string{"record_key", "record_value"}, check: oneOf("record_key", "record_value")},
	{name: "pk.fields", group: "Data Mapping", def: str("id"), check: oneOf("id")},
	{name: "table.name.format", group: "Data Mapping", def: str(Table), check: oneOf(Table, "${topic}")},
	{name: "auto.create", group: "DDL Support", def: str("true"), check: boolean},
	{name: "auto.evolve", group: "DDL Support", check: oneOf("false")},
	{name: "batch.size", group: "Writes", check: positiveInt},
}

var cassandraKeys = []key{
	{name: "contactPoints", group: "Connection", required: true, doc: "comma-separated hosts; the first is used"},
	{name: "port", group: "Connection", def: str("9042"), check: positiveInt},
	{name: "loadBalancing.localDc", group: "Connection", doc: "the local datacenter (the sink's dc parameter)"},
	{name: "auth.username", group: "Connection"},
	{name: "auth.password", group: "Connection"},
	{name: "maxConcurrentRequests", group: "Connection", check: positiveInt},
}

// mappingKey matches topic.<topic>.<keyspace>.<table>.mapping; topic names
// may hold dots, keyspace and table may not.
var mappingKey = regexp.MustCompile(`^topic\.(.+)\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)\.mapping$`)

// Mapping is a parsed DataStax topic mapping key.
type Mapping struct{ Topic, Keyspace, Table string }

// ParseMappingKey parses topic.<topic>.<keyspace>.<table>.mapping.
func ParseMappingKey(k string) (Mapping, bool) {
	m := mappingKey.FindStringSubmatch(k)
	if m == nil {
		return Mapping{}, false
	}
	return Mapping{Topic: m[1], Keyspace: m[2], Table: m[3]}, true
}

// jdbcURL turns a JDBC URL into a sinks.Open URL.
func jdbcURL(raw, user, password string) (string, error) {
	switch {
	case strings.HasPrefix(raw, "jdbc:sqlite:"):
		path := strings.TrimPrefix(raw, "jdbc:sqlite:")
		if path == "" {
			return "", fmt.Errorf("jdbc:sqlite: needs a path")
		}
		return "sqlite:" + path, nil
	case strings.HasPrefix(raw, "jdbc:postgresql://"):
		u, err := url.Parse(strings.TrimPrefix(raw, "jdbc:"))
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("not a URL of the form jdbc:postgresql://host:port/db")
		}
		q := u.Query()
		if user == "" {
			user = q.Get("user")
		}
		if password == "" {
			password = q.Get("password")
		}
		q.Del("user")
		q.Del("password")
		u.Scheme = "postgres"
		switch {
		case password != "":
			u.User = url.UserPassword(user, password)
		case user != "":
			u.User = url.User(user)
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return "", fmt.Errorf("unsupported URL; use jdbc:postgresql://host:port/db or jdbc:sqlite:PATH")
}

func pluginKeys(class string) ([]key, bool) {
	switch class {
	case ClassJDBC:
		return jdbcKeys, true
	case ClassCassandra:
		return cassandraKeys, true
	}
	return nil, false
}

// Validate checks cfg as a config of class and returns Connect's result.
func Validate(class string, cfg map[string]string) ConfigInfos {
	keys, _ := pluginKeys(class)
	all := append(slices.Clone(commonKeys), keys...)
	out := ConfigInfos{Name: class, Groups: []string{}}
	add := func(k key, v *string, errs []string) {
		if !slices.Contains(out.Groups, k.group) {
			out.Groups = append(out.Groups, k.group)
		}
		if errs == nil {
			errs = []string{}
		}
		rec := k.recommended
		if rec == nil {
			rec = []string{}
		}
		out.ErrorCount += len(errs)
		// Secrets are of type PASSWORD and answered hidden, as the JVM
		// worker does.
		typ := "STRING"
		if redact.Key(k.name) {
			typ = "PASSWORD"
		}
		if v != nil {
			shown := redact.Value(k.name, *v)
			v = &shown
		}
		out.Configs = append(out.Configs, ConfigInfo{
			Definition: ConfigDefinition{Name: k.name, Type: typ, Required: k.required, DefaultValue: k.def,
				Importance: "MEDIUM", Documentation: k.doc, Group: k.group, Width: "NONE", DisplayName: k.name, Dependents: []string{}},
			Value: ConfigValue{Name: k.name, Value: v, RecommendedValues: rec, Errors: errs, Visible: true},
		})
	}
	for _, k := range all {
		var errs []string
		v, ok := cfg[k.name]
		switch {
		case !ok && k.required:
			errs = append(errs, "Missing required configuration \""+k.name+"\" which has no default value.")
		case ok && k.check != nil:
			if p := k.check(v); p != "" {
				errs = append(errs, p)
			}
		}
		if k.name == "connector.class" && ok && keys == nil {
			errs = append(errs, fmt.Sprintf("unknown connector class %q; available: %s, %s", v, ClassJDBC, ClassCassandra))
		}
		if ok {
			add(k, &v, errs)
		} else {
			add(k, k.def, errs)
		}
	}
	// Cross-key rules.
	_, hasTopics := cfg["topics"]
	_, hasRegex := cfg["topics.regex"]
	if hasTopics == hasRegex {
		out.addError("topics", "exactly one of topics and topics.regex must be set")
	} else if hasTopics && (strings.Contains(cfg["topics"], ",") || strings.TrimSpace(cfg["topics"]) == "") {
		out.addError("topics", "name exactly one topic (a connector's tasks run one stream); use topics.regex for more")
	}
	if cfg["errors.deadletterqueue.topic.name"] != "" && cfg["errors.tolerance"] != "all" {
		out.addError("errors.deadletterqueue.topic.name", "a dead letter queue needs errors.tolerance=all")
	}
	// Unknown keys, and the mapping keys of the Cassandra plugin.
	var extra []string
	for k := range cfg {
		if !slices.ContainsFunc(all, func(kk key) bool { return kk.name == k }) {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	mappings := 0
	for _, k := range extra {
		v := cfg[k]
		unknown := key{name: k, group: "Unknown"}
		if class == ClassCassandra {
			if m, ok := ParseMappingKey(k); ok {
				mappings++
				unknown.group = "Mapping"
				var errs []string
				if m.Table != Table {
					errs = append(errs, fmt.Sprintf("table %q is not supported; the sink writes %s", m.Table, Table))
				}
				if p := checkMapping(v); p != "" {
					errs = append(errs, p)
				}
				add(unknown, &v, errs)
				continue
			}
		}
		add(unknown, &v, []string{"unknown or unsupported configuration key " + strconv.Quote(k)})
	}
	if class == ClassCassandra && mappings != 1 {
		out.addError("contactPoints", "exactly one topic.<topic>.<keyspace>.<table>.mapping is needed")
	}
	return out
}

// checkMapping accepts the DataStax mapping of our columns: "col=value.field, ...",
// requiring id=value.id (or id=key).
func checkMapping(v string) string {
	for part := range strings.SplitSeq(v, ",") {
		col, src, ok := strings.Cut(strings.TrimSpace(part), "=")
		col, src = strings.TrimSpace(col), strings.TrimSpace(src)
		if !ok || col == "" || src == "" {
			return fmt.Sprintf("mapping entry %q is not column=value.field", part)
		}
		if col == "id" {
			if src != "value.id" && src != "key" {
				return "id must map from value.id or key"
			}
			return ""
		}
	}
	return "the mapping must map id (id=value.id)"
}

func (ci *ConfigInfos) addError(name, msg string) {
	for i := range ci.Configs {
		if ci.Configs[i].Value.Name == name {
			ci.Configs[i].Value.Errors = append(ci.Configs[i].Value.Errors, msg)
			ci.ErrorCount++
			return
		}
	}
}

// Parse validates cfg and returns its Spec, or an error naming each bad key.
func Parse(cfg map[string]string) (Spec, error) {
	class := cfg["connector.class"]
	if vi := Validate(class, cfg); vi.ErrorCount > 0 {
		return Spec{}, &ConfigError{Problems: vi.Errors()}
	}
	s := Spec{Name: cfg["name"], Class: class, TopicRegex: cfg["topics.regex"], TasksMax: 1,
		Tolerate: cfg["errors.tolerance"] == "all", DLQ: cfg["errors.deadletterqueue.topic.name"],
		ContextHeaders: cfg["errors.deadletterqueue.context.headers.enable"] == "true"}
	if v, ok := cfg["tasks.max"]; ok {
		s.TasksMax, _ = strconv.Atoi(v)
	}
	for t := range strings.SplitSeq(cfg["topics"], ",") {
		if t = strings.TrimSpace(t); t != "" {
			s.Topics = append(s.Topics, t)
		}
	}
	s.JSON = cfg["value.converter"] == converterJSON
	if !s.JSON {
		s.RegistryURL = cfg["value.converter.schema.registry.url"]
	}
	switch class {
	case ClassJDBC:
		s.SinkURL, _ = jdbcURL(cfg["connection.url"], cfg["connection.user"], cfg["connection.password"])
	case ClassCassandra:
		host, _, _ := strings.Cut(cfg["contactPoints"], ",")
		port := cfg["port"]
		if port == "" {
			port = "9042"
		}
		var ks string
		for k := range cfg {
			if m, ok := ParseMappingKey(k); ok {
				ks = m.Keyspace
			}
		}
		u := url.URL{Scheme: "cassandra", Host: strings.TrimSpace(host) + ":" + port, Path: "/" + ks}
		q := url.Values{}
		if dc := cfg["loadBalancing.localDc"]; dc != "" {
			q.Set("dc", dc)
		}
		if c := cfg["maxConcurrentRequests"]; c != "" {
			q.Set("concurrency", c)
		}
		u.RawQuery = q.Encode()
		if cfg["auth.username"] != "" {
			u.User = url.UserPassword(cfg["auth.username"], cfg["auth.password"])
		}
		s.SinkURL = u.String()
	}
	return s, nil
}

// ConfigError is a config refused by validation; it names every bad key.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string {
	return fmt.Sprintf("Connector configuration is invalid and contains the following %d error(s):\n%s",
		len(e.Problems), strings.Join(e.Problems, "\n"))
}
