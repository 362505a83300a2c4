package randomuser

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// referenceResponses loads testdata/reference/randomuser-1.4-sample.json:
// real responses of the original generator, one per nationality.
func referenceResponses(t testing.TB) map[string]json.RawMessage {
	t.Helper()
	b, err := os.ReadFile("testdata/reference/randomuser-1.4-sample.json")
	if err != nil {
		t.Fatalf("read reference fixture: %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("parse reference fixture: %v", err)
	}
	return m
}

var allNats = []string{"AU", "BR", "CA", "CH", "DE", "DK", "ES", "FI", "FR", "GB", "IE",
	"IN", "IR", "MX", "NL", "NO", "NZ", "RS", "TR", "UA", "US"}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestDecodeReferenceEveryNat decodes the reference response of each of the
// API's 21 nationalities and checks every field the shape document says is
// there, the postcode's JSON type and the null id values; then it checks
// that re-encoding gives back the reference JSON, so no field was lost.
func TestDecodeReferenceEveryNat(t *testing.T) {
	ref := referenceResponses(t)
	if got := slices.Sorted(func(yield func(string) bool) {
		for k := range ref {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(got, allNats) {
		t.Fatalf("fixture nats = %v, want %v", got, allNats)
	}
	stringPostcode := map[string]bool{"CA": true, "GB": true, "NO": true}
	nullID := map[string]bool{"IR": true, "NZ": true, "TR": true, "UA": true}

	for _, nat := range allNats {
		t.Run(nat, func(t *testing.T) {
			raw := ref[nat]
			resp, err := Decode(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if resp.Info == nil || *resp.Info != (Info{Seed: "userstream", Results: 3, Page: 1, Version: "1.4"}) {
				t.Errorf("info = %+v, want seed userstream, 3 results, page 1, version 1.4", resp.Info)
			}
			if len(resp.Results) != 3 {
				t.Fatalf("got %d users, want 3", len(resp.Results))
			}
			for i, u := range resp.Results {
				nonEmpty := map[string]string{
					"gender": u.Gender, "name.title": u.Name.Title, "name.first": u.Name.First, "name.last": u.Name.Last,
					"location.street.name": u.Location.Street.Name, "location.city": u.Location.City,
					"location.state": u.Location.State, "location.country": u.Location.Country,
					"location.postcode":              u.Location.Postcode.String(),
					"location.coordinates.latitude":  u.Location.Coordinates.Latitude,
					"location.coordinates.longitude": u.Location.Coordinates.Longitude,
					"location.timezone.offset":       u.Location.Timezone.Offset,
					"location.timezone.description":  u.Location.Timezone.Description,
					"email":                          u.Email, "login.uuid": u.Login.UUID, "login.username": u.Login.Username,
					"login.password": u.Login.Password, "login.salt": u.Login.Salt, "login.md5": u.Login.MD5,
					"login.sha1": u.Login.SHA1, "login.sha256": u.Login.SHA256, "dob.date": u.DOB.Date,
					"registered.date": u.Registered.Date, "phone": u.Phone, "cell": u.Cell,
					"picture.large": u.Picture.Large, "picture.medium": u.Picture.Medium,
					"picture.thumbnail": u.Picture.Thumbnail, "nat": u.Nat,
				}
				for path, v := range nonEmpty {
					if v == "" {
						t.Errorf("user %d: %s is empty", i, path)
					}
				}
				if u.Nat != nat {
					t.Errorf("user %d: nat = %q, want %q", i, u.Nat, nat)
				}
				if u.Location.Street.Number < 1 || u.DOB.Age < 1 || u.Registered.Age < 1 {
					t.Errorf("user %d: street.number %d, dob.age %d, registered.age %d: want positive",
						i, u.Location.Street.Number, u.DOB.Age, u.Registered.Age)
				}
				if !uuidRE.MatchString(u.Login.UUID) {
					t.Errorf("user %d: login.uuid %q is not a UUID", i, u.Login.UUID)
				}
				for _, d := range []string{u.DOB.Date, u.Registered.Date} {
					if _, err := time.Parse(time.RFC3339, d); err != nil {
						t.Errorf("user %d: date %q: %v", i, d, err)
					}
				}
				if got, want := u.Location.Postcode.Numeric, !stringPostcode[nat]; got != want {
					t.Errorf("user %d: postcode %q numeric = %v, want %v", i, u.Location.Postcode, got, want)
				}
				if nullID[nat] {
					if u.ID.Value != nil || u.ID.Name != "" {
						t.Errorf("user %d: id = {%q, %v}, want {\"\", null}", i, u.ID.Name, u.ID.Value)
					}
				} else if u.ID.Name == "" || u.ID.Value == nil || *u.ID.Value == "" {
					t.Errorf("user %d: id = {%q, %v}, want a name and a value", i, u.ID.Name, u.ID.Value)
				}
			}

			// Re-encoding must give the reference JSON back: same keys,
			// same values, same JSON types (postcode number vs string,
			// id.value null).
			again, err := json.Marshal(resp)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			var want, got any
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(again, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("re-encoded response differs from the reference:\n got %s\nwant %s", again, raw)
			}
		})
	}
}

// TestDecodeNOPostcodeKeepsLeadingZero checks the one nat whose string
// postcodes can start with 0 keeps the text as sent.
func TestDecodeNOPostcodeKeepsLeadingZero(t *testing.T) {
	resp, err := Decode(strings.NewReader(`{"results":[{"location":{"postcode":"0805"},"nat":"NO"},{"location":{"postcode":805}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Results[0].Location.Postcode; got != TextPostcode("0805") {
		t.Errorf("string postcode = %#v, want text 0805", got)
	}
	if got := resp.Results[1].Location.Postcode; got != NumericPostcode(805) {
		t.Errorf("number postcode = %#v, want numeric 805", got)
	}
}

// TestDecodeTolerant covers what the real API varies or omits: extra
// fields, inc/exc subsets, noinfo, mixed postcode types, null id values.
func TestDecodeTolerant(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, r Response)
	}{
		{"unknown fields at every level", `{"results":[{"nat":"FR","extra":{"a":[1,2]},"name":{"first":"A","middle":"B"}}],"info":{"seed":"s","x":1},"warnings":[]}`,
			func(t *testing.T, r Response) {
				if r.Results[0].Nat != "FR" || r.Results[0].Name.First != "A" || r.Info.Seed != "s" {
					t.Errorf("known fields lost: %+v", r)
				}
			}},
		{"inc=name,nat subset", `{"results":[{"name":{"title":"Mr","first":"A","last":"B"},"nat":"US"}],"info":{"seed":"s","results":1,"page":1,"version":"1.4"}}`,
			func(t *testing.T, r Response) {
				u := r.Results[0]
				if u.Name.Last != "B" || u.Nat != "US" || u.Email != "" || u.Location.Postcode != (Postcode{}) {
					t.Errorf("subset decoded as %+v", u)
				}
			}},
		{"noinfo", `{"results":[{"nat":"US"}]}`,
			func(t *testing.T, r Response) {
				if r.Info != nil {
					t.Errorf("info = %+v, want nil", r.Info)
				}
			}},
		{"mixed postcode types", `{"results":[{"location":{"postcode":12345}},{"location":{"postcode":"M9R 6A5"}}]}`,
			func(t *testing.T, r Response) {
				if p := r.Results[0].Location.Postcode; !p.Numeric || p.String() != "12345" {
					t.Errorf("number postcode = %#v", p)
				}
				if p := r.Results[1].Location.Postcode; p.Numeric || p.String() != "M9R 6A5" {
					t.Errorf("string postcode = %#v", p)
				}
			}},
		{"null id value", `{"results":[{"id":{"name":"","value":null}},{"id":{"name":"SSN","value":"1"}}]}`,
			func(t *testing.T, r Response) {
				if r.Results[0].ID.Value != nil || r.Results[1].ID.Value == nil || *r.Results[1].ID.Value != "1" {
					t.Errorf("ids = %+v, %+v", r.Results[0].ID, r.Results[1].ID)
				}
			}},
		{"empty results", `{"results":[],"info":{"results":0}}`,
			func(t *testing.T, r Response) {
				if r.Results == nil || len(r.Results) != 0 {
					t.Errorf("results = %#v, want empty non-nil", r.Results)
				}
			}},
		{"whitespace around the body", " \n{\"results\":[]}\n\n",
			func(t *testing.T, r Response) {
				if r.Results == nil {
					t.Error("results nil")
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Decode(strings.NewReader(tt.body))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			tt.check(t, r)
		})
	}
}

// TestDecodeShapeErrors checks that every wrong shape is a *DecodeError
// matching ErrMalformed, naming the path and what was expected.
func TestDecodeShapeErrors(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantPath string
		wantMsg  string // substring of the error message
	}{
		{"empty body", ``, "", "truncated JSON"},
		{"truncated", `{"results":[{"name":{"first":"A"`, "", "truncated JSON"},
		{"garbage", `<html>502 Bad Gateway</html>`, "", "not valid JSON"},
		{"trailing data", `{"results":[]} {"results":[]}`, "", "not valid JSON"},
		{"array body", `[{"results":[]}]`, "", "want a JSON object, got array"},
		{"string body", `"results"`, "", "want a JSON object, got string"},
		{"null body", `null`, "results", "missing"},
		{"results missing", `{"info":{"seed":"x"}}`, "results", "missing or null, want an array of users"},
		{"results null", `{"results":null}`, "results", "missing"},
		{"results an object", `{"results":{"0":{}}}`, "results", "want an array, got object"},
		{"results a string", `{"results":"none"}`, "results", "want an array, got string"},
		{"user a string", `{"results":[{},"bob"]}`, "results[1]", "want an object, got string"},
		{"name a string", `{"results":[{"name":"Bob Smith"}]}`, "results[0].name", "want an object, got string"},
		{"third user's postcode a bool", `{"results":[{},{},{"location":{"postcode":true}}]}`, "results[2].location.postcode", "want a number or a string, got bool"},
		{"postcode an object", `{"results":[{"location":{"postcode":{"v":1}}}]}`, "results[0].location.postcode", "got object"},
		{"street number a string", `{"results":[{"location":{"street":{"number":"12","name":"x"}}}]}`, "results[0].location.street.number", "want an integer, got string"},
		{"age a float", `{"results":[{"dob":{"date":"x","age":1.5}}]}`, "results[0].dob.age", "want an integer, got number 1.5"},
		{"id value a number", `{"results":[{"id":{"name":"SSN","value":123}}]}`, "results[0].id.value", "want a string, got number"},
		{"nat a number", `{"results":[{"nat":1}]}`, "results[0].nat", "want a string, got number"},
		{"info page a string", `{"results":[],"info":{"page":"1"}}`, "info.page", "want an integer, got string"},
		{"info an array", `{"results":[],"info":[]}`, "info", "want an object, got array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tt.body))
			if err == nil {
				t.Fatal("Decode succeeded, want an error")
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("errors.Is(%v, ErrMalformed) = false", err)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *DecodeError", err, err)
			}
			if de.Path != tt.wantPath {
				t.Errorf("path = %q, want %q (error: %v)", de.Path, tt.wantPath, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
			if tt.wantPath != "" && !strings.Contains(err.Error(), tt.wantPath+": ") {
				t.Errorf("error %q does not name the path %q", err, tt.wantPath)
			}
		})
	}
}

// TestDecodeAPIError checks an {"error": ...} body comes back as an
// *APIError with the API's message, not as a malformed response.
func TestDecodeAPIError(t *testing.T) {
	for _, body := range []string{
		`{"error":"Uh oh, something has gone wrong. Please tweet us @randomapi about the issue. Thank you."}`,
		`{"error":"Uh oh, something has gone wrong. Please tweet us @randomapi about the issue. Thank you.","results":[]}`,
	} {
		_, err := Decode(strings.NewReader(body))
		var apiErr *APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("Decode(%s) = %v, want *APIError", body, err)
		}
		if !strings.HasPrefix(apiErr.Message, "Uh oh, something has gone wrong.") || errors.Is(err, ErrMalformed) {
			t.Errorf("APIError = %+v (malformed: %v)", apiErr, errors.Is(err, ErrMalformed))
		}
		if !strings.Contains(err.Error(), "Uh oh") {
			t.Errorf("message %q lost the API's text", err)
		}
	}
}

// TestDecodeReadError checks a failing reader is reported as such.
func TestDecodeReadError(t *testing.T) {
	boom := errors.New("connection reset")
	_, err := Decode(&failingReader{data: []byte(`{"results":[`), err: boom})
	if !errors.Is(err, boom) {
		t.Fatalf("Decode = %v, want the reader's error", err)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestFastDecodeTakesAPIBodies checks that the fast road decodes what API
// servers send, so that it is the road taken and not a fallback that only
// costs time: the real API's responses for every nationality, the
// generator's for every nationality, and a body with escapes, white space
// and the info block first. Each result must equal encoding/json's.
func TestFastDecodeTakesAPIBodies(t *testing.T) {
	bodies := map[string][]byte{}
	for nat, raw := range referenceResponses(t) {
		bodies["reference "+nat] = raw
	}
	g := NewGenerator()
	for _, nat := range allNats {
		var b bytes.Buffer
		if err := g.WriteResponse(&b, Params{Results: 50, Seed: "fast", Nat: []string{nat}}); err != nil {
			t.Fatal(err)
		}
		bodies["generator "+nat] = b.Bytes()
	}
	bodies["escapes and white space"] = []byte(" {\n\t\"info\" : {\"seed\":\"s\\u00e9\",\"results\":1,\"page\":-0,\"version\":\"1.4\"},\r\n" +
		"\"results\":[ {\"name\":{\"first\":\"A\\\"\\\\\\/\\b\\f\\n\\r\\tb\",\"last\":\"Ørsted\"},\"id\":{\"name\":\"\",\"value\":null}," +
		"\"location\":{\"postcode\":-1.5e3,\"street\":{\"number\":12,\"name\":\"x\"}}} ] } ")
	for name, body := range bodies {
		fast, ok := fastDecode(body)
		if !ok {
			t.Errorf("%s: the fast road refused the body", name)
			continue
		}
		var slow wireResponse
		if err := json.Unmarshal(body, &slow); err != nil {
			t.Fatalf("%s: encoding/json: %v", name, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Errorf("%s: fast road %+v, encoding/json %+v", name, fast, slow)
		}
	}
}

// TestFastDecodeLeavesTheRestToEncodingJSON lists bodies the fast road
// must refuse because encoding/json reads them its own way (or refuses
// them): Decode's result for each is then encoding/json's, as FuzzDecode
// checks at large.
func TestFastDecodeLeavesTheRestToEncodingJSON(t *testing.T) {
	for _, body := range []string{
		`{"RESULTS":[]}`, `{"results":[],"results":[]}`, `{"results":[{"name":{"first":"a"},"name":{"last":"b"}}]}`,
		`{"error":"Uh oh"}`, `{"results":null}`, `{"results":[null]}`, `{"results":[{"nat":null}]}`,
		"{\"results\":[{\"nat\":\"\xff\"}]}", `{"results":[{"nat":"\ud83d\ude00"}]}`, `{"results":[{"dob":{"age":1.0}}]}`,
		`{"results":[{"dob":{"age":99999999999999999999}}]}`, `{"results":[{"dob":{"age":01}}]}`, `{"results":[]} x`,
		`{"results":[{"unknown":1}]}`, `{"results":[{"nat":"a	b"}]}`, `{"results":[{"nat":"\x"}]}`, `[]`, ``,
		`{"results":[{"location":{"postcode":true}}]}`, `{"results":[{"id":{"value":nul}}]}`,
	} {
		if w, ok := fastDecode([]byte(body)); ok {
			t.Errorf("fast road took %q as %+v", body, w)
		}
	}
}
