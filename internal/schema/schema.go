// Package schema is the users' Avro: the Confluent wire format, the user
// schema under users_created-value, and an embedded Schema Registry.
//
// Records are written as magic byte 0, a 4-byte big-endian schema id and the
// Avro binary; a schema that could not read the data already written is
// refused before it is registered; plain JSON, as the original pipeline
// wrote it, is still read.
//
// It also runs an embedded Schema Registry that answers the Confluent REST
// API for Avro schemas as Confluent's registry does (validation,
// compatibility levels checked with Avro's resolution rules, global ids,
// soft and permanent deletes) and whose state survives a restart with the
// same ids, for `userstream dev` and `userstream broker`.
package schema

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/userstream/userstream/internal/user"
)

// Subject is the registry subject of the users_created topic's values under
// the TopicNameStrategy ("<topic>-value").
const Subject = "users_created-value"

//go:embed user.avsc
var userSchema string

// UserSchema returns the text of the Avro schema for user.Record that this
// package registers by default (record io.userstream.User).
func UserSchema() string { return userSchema }

// Errors returned by this package, matched with errors.Is. The errors that
// wrap them say which schema id, subject, or registry address was involved.
var (
	// ErrNotAvro means a message is not in the Confluent Avro wire format
	// (no magic byte 0) and could not be read as user JSON either, or that
	// the schema an id names is not an Avro schema.
	ErrNotAvro = errors.New("not a Confluent Avro message")
	// ErrTruncated means a message ends before its 5-byte header or its
	// Avro body is complete.
	ErrTruncated = errors.New("truncated message")
	// ErrMalformed means an Avro body does not decode with the schema its
	// header names.
	ErrMalformed = errors.New("malformed Avro body")
	// ErrUnknownSchema means the registry does not know the schema id a
	// message carries.
	ErrUnknownSchema = errors.New("unknown schema id")
	// ErrRegistryUnavailable means the Schema Registry could not be reached
	// or answered with a server error.
	ErrRegistryUnavailable = errors.New("schema registry unavailable")
	// ErrIncompatible means a schema cannot read data written with another
	// one (BACKWARD compatibility fails).
	ErrIncompatible = errors.New("incompatible schema")
	// ErrNotRegistered means Encode was called on a Serde built with
	// WithoutRegistration whose schema the registry does not have.
	ErrNotRegistered = errors.New("schema not registered")
)

// wireUser is the Avro shape of user.Record (the avsc's fields).
type wireUser struct {
	ID             string    `avro:"id"`
	FirstName      string    `avro:"first_name"`
	LastName       string    `avro:"last_name"`
	Gender         string    `avro:"gender"`
	Address        string    `avro:"address"`
	PostCode       string    `avro:"post_code"`
	Email          string    `avro:"email"`
	Username       string    `avro:"username"`
	DOB            string    `avro:"dob"`
	RegisteredDate string    `avro:"registered_date"`
	Phone          string    `avro:"phone"`
	Picture        string    `avro:"picture"`
	Nat            string    `avro:"nat"`
	IngestedAt     time.Time `avro:"ingested_at"`
	RunID          string    `avro:"run_id"`
}

func toWire(r user.Record) wireUser {
	return wireUser{
		ID: r.ID, FirstName: r.FirstName, LastName: r.LastName, Gender: r.Gender,
		Address: r.Address, PostCode: r.PostCode, Email: r.Email, Username: r.Username,
		DOB: r.DOB, RegisteredDate: r.RegisteredDate, Phone: r.Phone, Picture: r.Picture,
		Nat: r.Nat, IngestedAt: r.IngestedAt, RunID: r.RunID,
	}
}

func (w *wireUser) record() user.Record {
	r := user.Record{
		ID: w.ID, FirstName: w.FirstName, LastName: w.LastName, Gender: w.Gender,
		Address: w.Address, PostCode: w.PostCode, Email: w.Email, Username: w.Username,
		DOB: w.DOB, RegisteredDate: w.RegisteredDate, Phone: w.Phone, Picture: w.Picture,
		Nat: w.Nat, IngestedAt: w.IngestedAt, RunID: w.RunID,
	}
	if !r.IngestedAt.IsZero() {
		r.IngestedAt = r.IngestedAt.UTC()
	}
	return r
}

// Parse parses an Avro schema text with a private name cache, so that two
// versions of io.userstream.User never meet in hamba's global cache.
func Parse(text string) (avro.Schema, error) {
	return avro.ParseWithCache(text, "", &avro.SchemaCache{})
}

// CheckBackward reports whether a reader with schema next can read every
// message written with schema prev (Avro schema resolution, as the Schema
// Registry's BACKWARD level checks it). The verdict is hamba/avro's; the
// error names the first field at fault and wraps ErrIncompatible.
func CheckBackward(next, prev avro.Schema) error {
	return checkBackward(avro.NewSchemaCompatibility(), next, prev)
}

func checkBackward(c *avro.SchemaCompatibility, next, prev avro.Schema) error {
	err := c.Compatible(next, prev)
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrIncompatible, explain(c, next, prev, err))
}

// explain turns hamba's verdict into a sentence naming the field at fault
// when both schemas are records.
func explain(c *avro.SchemaCompatibility, next, prev avro.Schema, verdict error) string {
	nr, ok1 := next.(*avro.RecordSchema)
	pr, ok2 := prev.(*avro.RecordSchema)
	if !ok1 || !ok2 {
		return verdict.Error()
	}
	byName := make(map[string]*avro.Field, len(pr.Fields()))
	for _, f := range pr.Fields() {
		byName[f.Name()] = f
	}
	for _, f := range nr.Fields() {
		old, ok := byName[f.Name()]
		for _, a := range f.Aliases() {
			if ok {
				break
			}
			old, ok = byName[a]
		}
		if !ok {
			if !f.HasDefault() {
				return fmt.Sprintf("field %q is new and has no default, so messages written before it cannot be read (give it a default, e.g. [\"null\", ...] with default null)", f.Name())
			}
			continue
		}
		if err := c.Compatible(f.Type(), old.Type()); err != nil {
			return fmt.Sprintf("field %q changed from %s to %s: %v", f.Name(), typeName(old.Type()), typeName(f.Type()), err)
		}
	}
	return strings.TrimSpace(verdict.Error())
}

func typeName(s avro.Schema) string {
	if l, ok := s.(avro.LogicalTypeSchema); ok && l.Logical() != nil {
		return string(s.Type()) + "/" + string(l.Logical().Type())
	}
	return string(s.Type())
}
