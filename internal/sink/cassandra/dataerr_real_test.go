package cassandra_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/userstream/userstream/internal/sink"
	"github.com/userstream/userstream/internal/sink/sinktest"
	"github.com/userstream/userstream/internal/user"
)

// TestDataErrorsReal checks the sink's data-error classification against
// what a real Cassandra 5.0 node answers.
func TestDataErrorsReal(t *testing.T) {
	s := openReal(t, "retries=2")

	// A text that is not UTF-8: the node answers Invalid (0x2200) "String
	// didn't validate", which the sink reports as a *sink.RejectedError
	// with the node's words, so the stream dead-letters the record.
	bad := sinktest.Record(9100)
	bad.LastName = "bad \xff\xfe utf-8"
	err := s.Upsert(t.Context(), []user.Record{bad})
	var rej *sink.RejectedError
	if !errors.As(err, &rej) || !strings.Contains(rej.Reason, "String didn't validate") || !strings.Contains(rej.Reason, "0x2200") {
		t.Fatalf("Upsert of a non-UTF-8 text = %v; want a *sink.RejectedError with the node's reason and code", err)
	}

	// The largest valid record (every bounded field at 512 bytes) stays
	// under the node's batch_size_fail_threshold (50 KiB), so a record's
	// logged batch is never refused for its size; a byte more is refused
	// by validation before anything is sent.
	big := sinktest.Record(9101)
	pad := func(s string) string { return s + strings.Repeat("x", 512-len(s)) }
	big.FirstName, big.LastName, big.Address = pad(big.FirstName), pad(big.LastName), pad(big.Address)
	big.PostCode, big.Username, big.Phone = pad(big.PostCode), pad(big.Username), pad(big.Phone)
	big.Picture, big.RunID = pad(big.Picture), pad(big.RunID)
	big.Email = strings.Repeat("e", 512-len("@example.com")) + "@example.com"
	if err := big.Validate(); err != nil {
		t.Fatalf("the padded record is not valid: %v", err)
	}
	if err := s.Upsert(t.Context(), []user.Record{big}); err != nil {
		t.Fatalf("Upsert of the largest valid record: %v", err)
	}
	got, err := s.Get(t.Context(), big.ID)
	if err != nil || got.Picture != big.Picture {
		t.Fatalf("Get of the largest valid record: %v (picture %d bytes)", err, len(got.Picture))
	}
	over := big
	over.Address += "x"
	if err := s.Upsert(t.Context(), []user.Record{over}); !errors.Is(err, user.ErrInvalid) {
		t.Fatalf("Upsert of a 513-byte address = %v; want user.ErrInvalid before the node", err)
	}

	// The sink still writes after the refusals.
	if err := s.Upsert(t.Context(), sinktest.Records(0, 3)); err != nil {
		t.Fatalf("Upsert after the refused records: %v", err)
	}
}
