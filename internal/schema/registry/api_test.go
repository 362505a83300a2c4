package registry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/userstream/userstream/internal/schema"
	"github.com/userstream/userstream/internal/schema/schematest"
)

// Schemas of the API tests: a subject "s" starts at v1 (the user schema)
// and each case changes one thing.
func newRequiredField(t testing.TB) string {
	return schematest.WithField(t, "middle_name", map[string]any{"name": "middle_name", "type": "string"})
}

func postCodeInt(t testing.TB) string {
	return schematest.WithField(t, "post_code", map[string]any{"name": "post_code", "type": "int"})
}

func renamedField(t testing.TB) string {
	return schematest.WithField(t, "post_code", map[string]any{"name": "zip", "type": "string"})
}

func renamedFieldWithAlias(t testing.TB) string {
	return schematest.WithField(t, "post_code", map[string]any{"name": "zip", "type": "string", "aliases": []any{"post_code"}})
}

func renamedRecord() string {
	return strings.Replace(schema.UserSchema(), `"name": "User"`, `"name": "Person"`, 1)
}

const invalidSchema = `{"type":"recordx"}`

func avroSchema(text string) sr.Schema { return sr.Schema{Schema: text, Type: sr.TypeAvro} }

// small records for the level cases: fields given as JSON field objects.
func small(fields ...string) sr.Schema {
	return avroSchema(`{"type":"record","name":"R","fields":[` + strings.Join(fields, ",") + `]}`)
}

const (
	fieldAString        = `{"name":"a","type":"string"}`
	fieldAStringDefault = `{"name":"a","type":"string","default":""}`
	fieldAIntDefault    = `{"name":"a","type":"int","default":0}`
	fieldBString        = `{"name":"b","type":"string"}`
	fieldBStringDefault = `{"name":"b","type":"string","default":""}`
)

// apiCase is one call to the registry after some setup, with the error
// code Confluent's registry answers (0: success) and a check of the answer.
type apiCase struct {
	name  string
	do    func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error)
	code  int
	check func(t *testing.T, got any)
}

func mustCreate(t *testing.T, cl *sr.Client, subject string, s sr.Schema) sr.SubjectSchema {
	t.Helper()
	ss, err := cl.CreateSchema(t.Context(), subject, s)
	if err != nil {
		t.Fatalf("register %s: %v", subject, err)
	}
	return ss
}

func mustLevel(t *testing.T, cl *sr.Client, subject string, level sr.CompatibilityLevel) {
	t.Helper()
	var subjects []string
	if subject != "" {
		subjects = append(subjects, subject)
	}
	for _, r := range cl.SetCompatibility(t.Context(), sr.SetCompatibility{Level: level}, subjects...) {
		if r.Err != nil {
			t.Fatalf("set compatibility of %q to %v: %v", subject, level, r.Err)
		}
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func errorCode(err error) (status, code int) {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode, re.ErrorCode
	}
	return 0, -1
}

// check compatibility of s against subject "s" at version (-1 latest).
func compat(ctx context.Context, cl *sr.Client, version int, s sr.Schema) (any, error) {
	r, err := cl.CheckCompatibility(ctx, "s", version, s)
	return r, err
}

func isCompatible(want bool) func(t *testing.T, got any) {
	return func(t *testing.T, got any) {
		t.Helper()
		if r := got.(sr.CheckCompatibilityResult); r.Is != want {
			t.Fatalf("is_compatible = %v, want %v (%q)", r.Is, want, r.Messages)
		}
	}
}

func says(parts ...string) func(t *testing.T, got any) {
	return func(t *testing.T, got any) {
		t.Helper()
		s := fmt.Sprint(got)
		for _, p := range parts {
			if !strings.Contains(s, p) {
				t.Fatalf("answer %s does not say %q", s, p)
			}
		}
	}
}

func equals(want any) func(t *testing.T, got any) {
	return func(t *testing.T, got any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("answer %v, want %v", got, want)
		}
	}
}

// withV1 registers the user schema as version 1 of subject "s".
func withV1(t *testing.T, cl *sr.Client) sr.SubjectSchema {
	t.Helper()
	return mustCreate(t, cl, "s", avroSchema(schema.UserSchema()))
}

// raw calls the API with a body the typed client cannot express.
func raw(ctx context.Context, cl *sr.Client, method, path string, body any) (any, error) {
	var out any
	err := cl.Do(ctx, method, path, body, &out)
	return out, err
}

// TestRegistryAPI runs every call of the table in docs/schema.md against a
// fresh embedded registry over HTTP with franz-go's sr client and checks
// Confluent's answer: the error code (with its HTTP status) or the result.
func TestRegistryAPI(t *testing.T) {
	cases := []apiCase{
		// The tester's cases: POST /compatibility/subjects/s/versions/latest.
		{name: "compat/new required field without default", code: 0, check: isCompatible(false),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				return compat(ctx, cl, -1, avroSchema(newRequiredField(t)))
			}},
		{name: "compat/post_code string to int", check: isCompatible(false),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				return compat(ctx, cl, -1, avroSchema(postCodeInt(t)))
			}},
		{name: "compat/renamed field without alias", check: isCompatible(false),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				return compat(ctx, cl, -1, avroSchema(renamedField(t)))
			}},
		{name: "compat/renamed record", check: isCompatible(false),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				return compat(ctx, cl, -1, avroSchema(renamedRecord()))
			}},
		{name: "compat/invalid schema", code: 42201,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				return compat(ctx, cl, -1, avroSchema(invalidSchema))
			}},
		{name: "compat/unknown subject, latest", check: isCompatible(true),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				return compat(ctx, cl, -1, avroSchema(schema.UserSchema()))
			}},
		{name: "compat/unknown subject, version 1", code: 40402,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				return compat(ctx, cl, 1, avroSchema(schema.UserSchema()))
			}},
		{name: "compat/missing version", code: 40402,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				return compat(ctx, cl, 7, avroSchema(schema.UserSchema()))
			}},
		{name: "compat/invalid version", code: 42202,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				return raw(ctx, cl, http.MethodPost, "/compatibility/subjects/s/versions/0", avroSchema(schema.UserSchema()))
			}},
		{name: "compat/new optional field with default", check: isCompatible(true),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				return compat(ctx, cl, -1, avroSchema(schematest.V2Schema(t)))
			}},
		{name: "compat/renamed field with alias", check: isCompatible(true),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				return compat(ctx, cl, -1, avroSchema(renamedFieldWithAlias(t)))
			}},
		{name: "compat/verbose", check: says("READER_FIELD_MISSING_DEFAULT_VALUE", "The field 'middle_name' at path '/fields/15' in the new schema has no default value and is missing in the old schema", "{oldSchemaVersion: 1}", "compatibility: 'BACKWARD'"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				return compat(sr.WithParams(ctx, sr.Verbose), cl, -1, avroSchema(newRequiredField(t)))
			}},
		{name: "compat/verbose invalid schema", check: says("false", "Invalid schema of type AVRO"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				return compat(sr.WithParams(ctx, sr.Verbose), cl, -1, avroSchema(invalidSchema))
			}},
		{name: "compat/all versions", check: isCompatible(false),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				mustCreate(t, cl, "s", small(fieldAString))
				mustCreate(t, cl, "s", small())
				mustLevel(t, cl, "s", sr.CompatBackwardTransitive)
				return compat(ctx, cl, -2, small(fieldAIntDefault))
			}},
		{name: "compat/subject level NONE", check: isCompatible(true),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				mustLevel(t, cl, "s", sr.CompatNone)
				return compat(ctx, cl, -1, avroSchema(postCodeInt(t)))
			}},

		// POST /subjects/s/versions.
		{name: "register/user schema", check: says("s 1 1"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				ss, err := cl.CreateSchema(ctx, "s", avroSchema(schema.UserSchema()))
				return fmt.Sprint(ss.Subject, " ", ss.Version, " ", ss.ID), err
			}},
		{name: "register/same schema again, reformatted", check: equals("1 1"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				ss, err := cl.CreateSchema(ctx, "s", avroSchema(strings.ReplaceAll(schema.UserSchema(), "\n", "\n   ")))
				return fmt.Sprint(ss.Version, " ", ss.ID), err
			}},
		{name: "register/same schema under another subject", check: equals("1 1"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				ss, err := cl.CreateSchema(ctx, "other", avroSchema(schema.UserSchema()))
				return fmt.Sprint(ss.Version, " ", ss.ID), err
			}},
		{name: "register/new version gets a new id", check: equals("2 2"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				ss, err := cl.CreateSchema(ctx, "s", avroSchema(schematest.V2Schema(t)))
				return fmt.Sprint(ss.Version, " ", ss.ID), err
			}},
		{name: "register/incompatible", code: 409, check: nil,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				_, err := cl.CreateSchema(ctx, "s", avroSchema(newRequiredField(t)))
				if err != nil && !strings.HasPrefix(err.Error(), `Schema being registered is incompatible with an earlier schema for subject "s", details: [{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE'`) {
					t.Errorf("409 message = %q", err)
				}
				return nil, err
			}},
		{name: "register/invalid schema is not registered", code: 42201,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				_, err := cl.CreateSchema(ctx, "s", avroSchema(invalidSchema))
				if subjects, _ := cl.Subjects(ctx); len(subjects) != 0 {
					t.Errorf("after an invalid schema, subjects = %v", subjects)
				}
				return nil, err
			}},
		{name: "register/invalid default", code: 42201,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				return cl.CreateSchema(ctx, "s", small(`{"name":"a","type":"int","default":"x"}`))
			}},
		{name: "register/JSON schema type", code: 42201, check: nil,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				_, err := cl.CreateSchema(ctx, "s", sr.Schema{Schema: `{"type":"object"}`, Type: sr.TypeJSON})
				if err == nil || err.Error() != "Invalid schema type JSON" {
					t.Errorf("message = %v", err)
				}
				return nil, err
			}},
		{name: "register/PROTOBUF schema type", code: 42201,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				return cl.CreateSchema(ctx, "s", sr.Schema{Schema: `syntax = "proto3"; message M {}`, Type: sr.TypeProtobuf})
			}},
		{name: "register/references", code: 42201,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				s := avroSchema(`{"type":"record","name":"W","fields":[{"name":"u","type":"io.userstream.User"}]}`)
				s.References = []sr.SchemaReference{{Name: "io.userstream.User", Subject: "s", Version: 1}}
				return cl.CreateSchema(ctx, "w", s)
			}},
		{name: "register/after soft delete: next version, same id", check: equals("[2] 1"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				_, err := cl.DeleteSubject(ctx, "s", sr.SoftDelete)
				mustDo(t, err)
				ss := mustCreate(t, cl, "s", avroSchema(schema.UserSchema()))
				// The soft-deleted v1 of the same schema is gone for good.
				versions, err := cl.SubjectVersions(sr.WithParams(ctx, sr.ShowDeleted), "s")
				return fmt.Sprint(versions, " ", ss.ID), err
			}},

		// Compatibility levels, on registration.
		{name: "level/BACKWARD allows a removed field", check: equals(2),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				mustCreate(t, cl, "s", small(fieldAString, fieldBString))
				ss, err := cl.CreateSchema(ctx, "s", small(fieldAString))
				return ss.Version, err
			}},
		{name: "level/FORWARD refuses a removed field", code: 409,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				mustCreate(t, cl, "s", small(fieldAString, fieldBString))
				mustLevel(t, cl, "s", sr.CompatForward)
				return cl.CreateSchema(ctx, "s", small(fieldAString))
			}},
		{name: "level/FORWARD allows a new field without default", check: equals(2),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				mustCreate(t, cl, "s", small(fieldAString))
				mustLevel(t, cl, "s", sr.CompatForward)
				ss, err := cl.CreateSchema(ctx, "s", small(fieldAString, fieldBString))
				return ss.Version, err
			}},
		{name: "level/FULL refuses a new field without default", code: 409,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				mustCreate(t, cl, "s", small(fieldAString))
				mustLevel(t, cl, "s", sr.CompatFull)
				return cl.CreateSchema(ctx, "s", small(fieldAString, fieldBString))
			}},
		{name: "level/FULL allows a new field with default", check: equals(2),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				mustCreate(t, cl, "s", small(fieldAString))
				mustLevel(t, cl, "s", sr.CompatFull)
				ss, err := cl.CreateSchema(ctx, "s", small(fieldAString, fieldBStringDefault))
				return ss.Version, err
			}},
		{name: "level/BACKWARD checks the latest only", check: equals(3),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				mustCreate(t, cl, "s", small(fieldAString))
				mustCreate(t, cl, "s", small())
				ss, err := cl.CreateSchema(ctx, "s", small(fieldAIntDefault))
				return ss.Version, err
			}},
		{name: "level/BACKWARD_TRANSITIVE checks all", code: 409,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				mustCreate(t, cl, "s", small(fieldAString))
				mustCreate(t, cl, "s", small())
				mustLevel(t, cl, "s", sr.CompatBackwardTransitive)
				return cl.CreateSchema(ctx, "s", small(fieldAIntDefault))
			}},
		{name: "level/FORWARD_TRANSITIVE checks all", code: 409,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				mustLevel(t, cl, "s", sr.CompatForward)
				mustCreate(t, cl, "s", small(fieldAString))
				mustCreate(t, cl, "s", small(fieldAStringDefault))
				// FORWARD alone would take it: v2 reads it.
				r, err := cl.CheckCompatibility(ctx, "s", -1, small())
				if err != nil || !r.Is {
					t.Fatalf("FORWARD against v2: %+v, %v", r, err)
				}
				mustLevel(t, cl, "s", sr.CompatForwardTransitive)
				return cl.CreateSchema(ctx, "s", small())
			}},
		{name: "level/FULL_TRANSITIVE checks all", code: 409,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				mustLevel(t, cl, "s", sr.CompatFull)
				mustCreate(t, cl, "s", small(fieldAStringDefault))
				mustCreate(t, cl, "s", small())
				r, err := cl.CheckCompatibility(ctx, "s", -1, small(fieldAIntDefault))
				if err != nil || !r.Is {
					t.Fatalf("FULL against v2: %+v, %v", r, err)
				}
				mustLevel(t, cl, "s", sr.CompatFullTransitive)
				return cl.CreateSchema(ctx, "s", small(fieldAIntDefault))
			}},
		{name: "level/NONE allows anything", check: equals(2),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				mustLevel(t, cl, "", sr.CompatNone)
				ss, err := cl.CreateSchema(ctx, "s", avroSchema(postCodeInt(t)))
				return ss.Version, err
			}},

		// /config.
		{name: "config/global default", check: equals("BACKWARD"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				r := cl.Compatibility(ctx)[0]
				return r.Level, r.Err
			}},
		{name: "config/set global", check: equals("FULL FULL"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				set := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull})[0]
				mustDo(t, set.Err)
				got := cl.Compatibility(ctx)[0]
				return fmt.Sprint(set.Level, " ", got.Level), got.Err
			}},
		{name: "config/invalid level", code: 42203,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				return raw(ctx, cl, http.MethodPut, "/config/s", map[string]string{"compatibility": "SIDEWAYS"})
			}},
		{name: "config/subject not configured", code: 40408,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				r := cl.Compatibility(ctx, "s")[0]
				return r.Level, r.Err
			}},
		{name: "config/subject defaultToGlobal", check: equals("BACKWARD"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				r := cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), "s")[0]
				return r.Level, r.Err
			}},
		{name: "config/set subject", check: equals("FORWARD_TRANSITIVE"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				mustLevel(t, cl, "s", sr.CompatForwardTransitive)
				r := cl.Compatibility(ctx, "s")[0]
				return r.Level, r.Err
			}},
		{name: "config/delete subject", check: equals("map[compatibilityLevel:FULL] 40408"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				mustLevel(t, cl, "s", sr.CompatFull)
				old, err := raw(ctx, cl, http.MethodDelete, "/config/s", nil)
				mustDo(t, err)
				_, code := errorCode(cl.Compatibility(ctx, "s")[0].Err)
				return fmt.Sprint(old, " ", code), nil
			}},
		{name: "config/delete subject not configured", code: 40401,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				return raw(ctx, cl, http.MethodDelete, "/config/s", nil)
			}},
		{name: "config/delete global", check: equals("map[compatibilityLevel:NONE] BACKWARD"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				mustLevel(t, cl, "", sr.CompatNone)
				old, err := raw(ctx, cl, http.MethodDelete, "/config", nil)
				mustDo(t, err)
				return fmt.Sprint(old, " ", cl.Compatibility(ctx)[0].Level), nil
			}},

		// POST /subjects/s (lookup).
		{name: "lookup/found", check: equals("s 1 1"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				mustCreate(t, cl, "other", avroSchema(schematest.V2Schema(t)))
				ss, err := cl.LookupSchema(ctx, "s", avroSchema(schema.UserSchema()))
				return fmt.Sprint(ss.Subject, " ", ss.Version, " ", ss.ID), err
			}},
		{name: "lookup/subject not found", code: 40401,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				return cl.LookupSchema(ctx, "s", avroSchema(schema.UserSchema()))
			}},
		{name: "lookup/schema not found", code: 40403,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				return cl.LookupSchema(ctx, "s", avroSchema(schematest.V2Schema(t)))
			}},
		{name: "lookup/invalid schema", code: 42201,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				return cl.LookupSchema(ctx, "s", avroSchema(invalidSchema))
			}},
		{name: "lookup/soft-deleted version, deleted=true", check: equals("1 true"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				mustCreate(t, cl, "s", avroSchema(schematest.V2Schema(t)))
				mustDo(t, cl.DeleteSchema(ctx, "s", 1, sr.SoftDelete))
				_, err := cl.LookupSchema(ctx, "s", avroSchema(schema.UserSchema()))
				_, code := errorCode(err)
				ss, err := cl.LookupSchema(sr.WithParams(ctx, sr.ShowDeleted), "s", avroSchema(schema.UserSchema()))
				return fmt.Sprint(ss.Version, " ", code == 40403), err
			}},

		// GET /subjects, /subjects/s/versions, /subjects/s/versions/v.
		{name: "subjects/list", check: equals("[a b]"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				mustCreate(t, cl, "b", avroSchema(schema.UserSchema()))
				mustCreate(t, cl, "a", avroSchema(schema.UserSchema()))
				return cl.Subjects(ctx)
			}},
		{name: "subjects/list deleted=true", check: equals("[a] [a b]"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				mustCreate(t, cl, "b", avroSchema(schema.UserSchema()))
				mustCreate(t, cl, "a", avroSchema(schema.UserSchema()))
				_, err := cl.DeleteSubject(ctx, "b", sr.SoftDelete)
				mustDo(t, err)
				live, err := cl.Subjects(ctx)
				mustDo(t, err)
				all, err := cl.Subjects(sr.WithParams(ctx, sr.ShowDeleted))
				return fmt.Sprint(live, " ", all), err
			}},
		{name: "versions/list", check: equals("[1 2]"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				mustCreate(t, cl, "s", avroSchema(schematest.V2Schema(t)))
				return cl.SubjectVersions(ctx, "s")
			}},
		{name: "versions/list unknown subject", code: 40401,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				return cl.SubjectVersions(ctx, "s")
			}},
		{name: "version/latest", check: equals("s 2 2 AVRO true"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				mustCreate(t, cl, "s", avroSchema(schematest.V2Schema(t)))
				ss, err := cl.SchemaByVersion(ctx, "s", -1)
				return fmt.Sprint(ss.Subject, " ", ss.Version, " ", ss.ID, " ", ss.Type, " ", ss.Schema.Schema == schematest.V2Schema(t)), err
			}},
		{name: "version/by number", check: equals("1 1"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				mustCreate(t, cl, "s", avroSchema(schematest.V2Schema(t)))
				ss, err := cl.SchemaByVersion(ctx, "s", 1)
				return fmt.Sprint(ss.Version, " ", ss.ID), err
			}},
		{name: "version/schema only", check: equals(true),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				text, err := cl.SchemaTextByVersion(ctx, "s", 1)
				return text == schema.UserSchema(), err
			}},
		{name: "version/not found", code: 40402,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				return cl.SchemaByVersion(ctx, "s", 2)
			}},
		{name: "version/subject not found", code: 40401,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				return cl.SchemaByVersion(ctx, "s", 1)
			}},
		{name: "version/invalid", code: 42202,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				return raw(ctx, cl, http.MethodGet, "/subjects/s/versions/abc", nil)
			}},

		// /schemas.
		{name: "ids/schema", check: equals(true),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				ss := withV1(t, cl)
				s, err := cl.SchemaByID(ctx, ss.ID)
				return s.Schema == schema.UserSchema() && s.Type == sr.TypeAvro, err
			}},
		{name: "ids/not found", code: 40403,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				return cl.SchemaByID(ctx, 99)
			}},
		{name: "ids/versions", check: equals("[{other 1} {s 1}]"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				ss := withV1(t, cl)
				mustCreate(t, cl, "other", avroSchema(schema.UserSchema()))
				return cl.SchemaVersionsByID(ctx, ss.ID)
			}},
		{name: "ids/subjects", check: equals("[other s]"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				ss := withV1(t, cl)
				mustCreate(t, cl, "other", avroSchema(schema.UserSchema()))
				return cl.SubjectsByID(ctx, ss.ID)
			}},
		{name: "ids/subjects not found", code: 40403,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				return cl.SubjectsByID(ctx, 99)
			}},
		{name: "types", check: equals("[AVRO]"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				return cl.SupportedTypes(ctx)
			}},

		// Deletes.
		{name: "delete/subject soft", check: equals("[1 2] 40401 true"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				ss := withV1(t, cl)
				mustCreate(t, cl, "s", avroSchema(schematest.V2Schema(t)))
				versions, err := cl.DeleteSubject(ctx, "s", sr.SoftDelete)
				mustDo(t, err)
				_, code := errorCode(func() error { _, err := cl.SubjectVersions(ctx, "s"); return err }())
				// The id still decodes old messages.
				_, idErr := cl.SchemaByID(ctx, ss.ID)
				return fmt.Sprint(versions, " ", code, " ", idErr == nil), nil
			}},
		{name: "delete/subject soft twice", code: 40404,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				_, err := cl.DeleteSubject(ctx, "s", sr.SoftDelete)
				mustDo(t, err)
				return cl.DeleteSubject(ctx, "s", sr.SoftDelete)
			}},
		{name: "delete/subject permanent before soft", code: 40405,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				return cl.DeleteSubject(ctx, "s", sr.HardDelete)
			}},
		{name: "delete/subject permanent after soft", check: equals("[1] [] 40403"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				ss := withV1(t, cl)
				mustLevel(t, cl, "s", sr.CompatFull)
				_, err := cl.DeleteSubject(ctx, "s", sr.SoftDelete)
				mustDo(t, err)
				versions, err := cl.DeleteSubject(ctx, "s", sr.HardDelete)
				mustDo(t, err)
				all, err := cl.Subjects(sr.WithParams(ctx, sr.ShowDeleted))
				mustDo(t, err)
				_, code := errorCode(func() error { _, err := cl.SchemaByID(ctx, ss.ID); return err }())
				// The subject's level went with it.
				if _, c := errorCode(cl.Compatibility(ctx, "s")[0].Err); c != 40408 {
					t.Errorf("level after a permanent delete: code %d, want 40408", c)
				}
				return fmt.Sprint(versions, " ", all, " ", code), nil
			}},
		{name: "delete/subject not found", code: 40401,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				return cl.DeleteSubject(ctx, "s", sr.SoftDelete)
			}},
		{name: "delete/version soft", check: equals("[2] [1 2] 40402 1"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				mustCreate(t, cl, "s", avroSchema(schematest.V2Schema(t)))
				mustDo(t, cl.DeleteSchema(ctx, "s", 1, sr.SoftDelete))
				live, err := cl.SubjectVersions(ctx, "s")
				mustDo(t, err)
				all, err := cl.SubjectVersions(sr.WithParams(ctx, sr.ShowDeleted), "s")
				mustDo(t, err)
				_, code := errorCode(func() error { _, err := cl.SchemaByVersion(ctx, "s", 1); return err }())
				ss, err := cl.SchemaByVersion(sr.WithParams(ctx, sr.ShowDeleted), "s", 1)
				return fmt.Sprint(live, " ", all, " ", code, " ", ss.Version), err
			}},
		{name: "delete/version soft twice", code: 40406,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				mustDo(t, cl.DeleteSchema(ctx, "s", 1, sr.SoftDelete))
				return nil, cl.DeleteSchema(ctx, "s", 1, sr.SoftDelete)
			}},
		{name: "delete/version permanent before soft", code: 40407,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				return nil, cl.DeleteSchema(ctx, "s", 1, sr.HardDelete)
			}},
		{name: "delete/version permanent after soft", check: equals("[2]"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				mustCreate(t, cl, "s", avroSchema(schematest.V2Schema(t)))
				mustDo(t, cl.DeleteSchema(ctx, "s", 1, sr.SoftDelete))
				mustDo(t, cl.DeleteSchema(ctx, "s", 1, sr.HardDelete))
				return cl.SubjectVersions(sr.WithParams(ctx, sr.ShowDeleted), "s")
			}},
		{name: "delete/version not found", code: 40402,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				return nil, cl.DeleteSchema(ctx, "s", 5, sr.SoftDelete)
			}},
		{name: "delete/version answers its number", check: equals(float64(2)),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				mustCreate(t, cl, "s", avroSchema(schematest.V2Schema(t)))
				return raw(ctx, cl, http.MethodDelete, "/subjects/s/versions/latest", nil)
			}},

		// /mode.
		{name: "mode/default", check: equals("READWRITE"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				r := cl.Mode(ctx)[0]
				return r.Mode, r.Err
			}},
		{name: "mode/READONLY refuses registration", code: 42205,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				mustDo(t, cl.SetMode(ctx, sr.ModeReadOnly)[0].Err)
				return cl.CreateSchema(ctx, "s", avroSchema(schema.UserSchema()))
			}},
		{name: "mode/invalid", code: 42204,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				return raw(ctx, cl, http.MethodPut, "/mode", map[string]string{"mode": "SLEEPY"})
			}},
		{name: "mode/IMPORT with subjects", code: 42205,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				withV1(t, cl)
				r := cl.SetMode(ctx, sr.ModeImport)[0]
				return r.Mode, r.Err
			}},
		{name: "mode/IMPORT keeps given id and version", check: equals("42 3 43"),
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				mustDo(t, cl.SetMode(ctx, sr.ModeImport)[0].Err)
				ss, err := cl.CreateSchemaWithIDAndVersion(ctx, "s", avroSchema(schema.UserSchema()), 42, 3)
				mustDo(t, err)
				mustDo(t, cl.SetMode(ctx, sr.ModeReadWrite)[0].Err)
				next := mustCreate(t, cl, "other", avroSchema(schematest.V2Schema(t)))
				return fmt.Sprint(ss.ID, " ", ss.Version, " ", next.ID), nil
			}},

		// Anything else.
		{name: "unknown path", code: 404,
			do: func(t *testing.T, ctx context.Context, cl *sr.Client) (any, error) {
				return raw(ctx, cl, http.MethodGet, "/nothing/here", nil)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := schematest.StartRegistry(t, "")
			cl := schematest.NewClient(t, reg.URL())
			got, err := tc.do(t, t.Context(), cl)
			status, code := errorCode(err)
			switch {
			case tc.code == 0 && err != nil:
				t.Fatalf("error %v (status %d, code %d), want success", err, status, code)
			case tc.code != 0 && code != tc.code:
				t.Fatalf("answer %v, %v (status %d, code %d), want error code %d", got, err, status, code, tc.code)
			case tc.code != 0 && status != wantStatus(tc.code):
				t.Fatalf("error code %d came with HTTP status %d, want %d", code, status, wantStatus(tc.code))
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

// wantStatus is the HTTP status Confluent's registry sends an error code
// with: the code's first three digits.
func wantStatus(code int) int {
	for code >= 1000 {
		code /= 10
	}
	return code
}

// TestRegistryContentType checks the media type of answers, errors
// included.
func TestRegistryContentType(t *testing.T) {
	reg := schematest.StartRegistry(t, "")
	for _, path := range []string{"/subjects", "/schemas/ids/1", "/schemas/ids/1/schema", "/nothing"} {
		resp, err := http.Get(reg.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.schemaregistry.v1+json" {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
	}
}

// TestRegistryMessagesKeepDecoding: deleting the subject a producer wrote
// with does not stop its messages from decoding, as with Confluent's
// registry (the id stays until the last version using it is removed for
// good).
func TestRegistryMessagesKeepDecoding(t *testing.T) {
	reg := schematest.StartRegistry(t, "")
	cl := schematest.NewClient(t, reg.URL())
	w := schematest.NewSerde(t, cl)
	msg, err := w.Encode(schematest.Sample(70))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeleteSubject(t.Context(), schema.Subject, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	r := schematest.NewSerde(t, cl, schema.WithoutRegistration())
	got, err := r.Decode(msg)
	if err != nil || got != schematest.WantRecord(schematest.Sample(70)) {
		t.Fatalf("Decode after a soft delete = %+v, %v", got, err)
	}
	versions, err := cl.SubjectVersions(sr.WithParams(t.Context(), sr.ShowDeleted), schema.Subject)
	if err != nil || !slices.Equal(versions, []int{1}) {
		t.Fatalf("versions with deleted=true: %v, %v", versions, err)
	}
}
