package ingest

import (
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/userstream/userstream/internal/randomuser"
	"github.com/userstream/userstream/internal/user"
)

// FromAPI maps an API user to the pipeline's record. The address is
// "<number> <street>, <city>, <state>, <country>" as in the original.
func FromAPI(u randomuser.User, ingestedAt time.Time, runID string) user.Record {
	r := user.Record{
		ID:        u.Login.UUID,
		FirstName: u.Name.First,
		LastName:  u.Name.Last,
		Gender:    u.Gender,
		// The API's data has stray spaces (BR streets end in one); the
		// address is trimmed part by part so it reads "Rua X, City".
		Address:        address(u.Location),
		PostCode:       u.Location.Postcode.String(),
		Email:          u.Email,
		Username:       u.Login.Username,
		DOB:            u.DOB.Date,
		RegisteredDate: u.Registered.Date,
		Phone:          u.Phone,
		Picture:        u.Picture.Medium,
		Nat:            u.Nat,
		IngestedAt:     ingestedAt.UTC(),
		RunID:          runID,
	}
	// uuid.Parse also takes upper case, braces, "urn:uuid:" and no dashes:
	// store the canonical form so one user is always one id.
	if user.IsCanonicalID(r.ID) {
		return r
	}
	if id, err := uuid.Parse(r.ID); err == nil {
		r.ID = id.String()
	} else {
		r.ID = user.ContentID(r)
	}
	return r
}

// address is "<number> <street>, <city>, <state>, <country>", each part
// trimmed, in one allocation.
func address(l randomuser.Location) string {
	street, city := strings.TrimSpace(l.Street.Name), strings.TrimSpace(l.City)
	state, country := strings.TrimSpace(l.State), strings.TrimSpace(l.Country)
	b := make([]byte, 0, 20+len(street)+len(city)+len(state)+len(country)+7)
	b = strconv.AppendInt(b, int64(l.Street.Number), 10)
	b = append(b, ' ')
	b = append(b, street...)
	for _, part := range [...]string{city, state, country} {
		b = append(b, ", "...)
		b = append(b, part...)
	}
	return string(b)
}
