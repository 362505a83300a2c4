package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/userstream/userstream/internal/broker"
)

// endOffsets sums the end offsets of a topic's partitions.
func (c *client) endOffsets(topic string) int64 {
	c.t.Helper()
	resp := c.get("/api/ui/topics/" + topic)
	var p struct {
		Topic broker.TopicDescription `json:"topic"`
	}
	if err := json.Unmarshal([]byte(resp.body), &p); err != nil {
		c.t.Fatalf("%d %s: %v", resp.StatusCode, resp.body, err)
	}
	var n int64
	for _, pd := range p.Topic.Partitions {
		n += pd.End
	}
	return n
}

var producedAt = regexp.MustCompile(`partition <span id="produced-partition">(\d+)</span> at offset <span id="produced-offset">(\d+)</span>`)

func TestProduce(t *testing.T) {
	f := newFixture(t)
	admin := f.loggedIn(t, "admin", adminPassword)
	viewer := f.loggedIn(t, "viewer", viewerPassword)
	path := "/topics/" + broker.Topic + "/produce"
	good := map[string]any{"id": "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a", "first_name": "Ada", "last_name": "O'Hara <b>",
		"gender": "female", "address": "1 Main St, Springfield, IL, United States", "post_code": "62701",
		"email": "ada.ohara@example.org", "username": "ada", "dob": "1990-01-02T03:04:05.678Z",
		"registered_date": "2015-06-07T08:09:10.111Z", "phone": "555-0100", "picture": "https://randomuser.me/api/portraits/med/women/1.jpg",
		"nat": "US", "ingested_at": "2026-12-06T21:30:00.123Z", "run_id": "manual__ui"}
	goodJSON, _ := json.Marshal(good)

	t.Run("the form shows the schema it checks against", func(t *testing.T) {
		resp := admin.get(path)
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.body, "latest schema of "+broker.Topic+"-value") {
			t.Fatalf("%d %.1500s", resp.StatusCode, resp.body)
		}
	})
	t.Run("a topic that is not there: 404", func(t *testing.T) {
		if resp := admin.get("/topics/no-such-topic/produce"); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%d %.500s", resp.StatusCode, resp.body)
		}
		if resp := admin.post("/topics/no-such-topic/produce", url.Values{"csrf": {admin.csrf()}, "value": {"{}"}}); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%d %.500s", resp.StatusCode, resp.body)
		}
	})
	t.Run("a viewer may not produce: 403, nothing sent", func(t *testing.T) {
		before := viewer.endOffsets(broker.Topic)
		resp := viewer.post(path, url.Values{"csrf": {viewer.csrf()}, "key": {"k"}, "value": {string(goodJSON)}})
		if resp.StatusCode != http.StatusForbidden || viewer.endOffsets(broker.Topic) != before {
			t.Fatalf("%d %s", resp.StatusCode, resp.body)
		}
	})
	t.Run("without the CSRF token: 403, nothing sent", func(t *testing.T) {
		before := admin.endOffsets(broker.Topic)
		resp := admin.post(path, url.Values{"key": {"k"}, "value": {string(goodJSON)}})
		if resp.StatusCode != http.StatusForbidden || admin.endOffsets(broker.Topic) != before {
			t.Fatalf("%d %s", resp.StatusCode, resp.body)
		}
	})
	csrf := admin.csrf()
	for _, tc := range []struct{ name, value, says string }{
		{"not JSON", `{"id": `, "the value is not JSON"},
		{"a field of the wrong type", strings.Replace(string(goodJSON), `"ada.ohara@example.org"`, `42`, 1), "field email: want a string, got a number"},
		{"a required field missing", `{"id": "0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a"}`, "field first_name: missing, and the schema gives it no default"},
	} {
		t.Run("refused: "+tc.name+"; the form is kept and nothing sent", func(t *testing.T) {
			before := admin.endOffsets(broker.Topic)
			resp := admin.post(path, url.Values{"csrf": {csrf}, "key": {"kept-key"}, "value": {tc.value}})
			if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(resp.body, tc.says) ||
				!strings.Contains(resp.body, `value="kept-key"`) {
				t.Fatalf("%d %.3000s, want 422 saying %q with the key kept", resp.StatusCode, resp.body, tc.says)
			}
			if after := admin.endOffsets(broker.Topic); after != before {
				t.Fatalf("end offsets %d, were %d: a refused value was produced", after, before)
			}
		})
	}
	t.Run("a good value is written as Avro and reads back equal", func(t *testing.T) {
		resp := admin.post(path, url.Values{"csrf": {csrf}, "key": {good["id"].(string)}, "value": {string(goodJSON)}})
		m := producedAt.FindStringSubmatch(resp.body)
		if resp.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("%d %.3000s", resp.StatusCode, resp.body)
		}
		if !strings.Contains(resp.body, "see the message") {
			t.Errorf("no link to the message: %.2000s", resp.body)
		}
		got := admin.get("/api/ui/topics/" + broker.Topic + "/messages?mode=offset&partition=" + m[1] + "&offset=" + m[2] + "&limit=1")
		var page struct {
			Messages []struct {
				Offset int64  `json:"offset"`
				Key    string `json:"key"`
				Value  struct {
					Format string `json:"format"`
					Text   string `json:"text"`
				} `json:"value"`
			} `json:"messages"`
		}
		if err := json.Unmarshal([]byte(got.body), &page); err != nil || len(page.Messages) != 1 {
			t.Fatalf("%s: %v", got.body, err)
		}
		msg := page.Messages[0]
		var decoded map[string]any
		if err := json.Unmarshal([]byte(msg.Value.Text), &decoded); err != nil {
			t.Fatal(err)
		}
		if off, _ := strconv.ParseInt(m[2], 10, 64); msg.Offset != off || msg.Key != good["id"] || msg.Value.Format != "avro" {
			t.Fatalf("read back %+v", msg)
		}
		for k, v := range good {
			if decoded[k] != v {
				t.Errorf("%s: read back %v, sent %v", k, decoded[k], v)
			}
		}
		if len(decoded) != len(good) {
			t.Errorf("read back %v, sent %v", decoded, good)
		}
	})
	t.Run("the JSON twin, for scripts with basic auth", func(t *testing.T) {
		post := func(user, password, value string) (int, map[string]any) {
			req, _ := http.NewRequest(http.MethodPost, f.url+"/api/ui/topics/"+broker.Topic+"/produce",
				strings.NewReader(url.Values{"key": {"script"}, "value": {value}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(user, password)
			resp := f.client(t).do(req)
			var out map[string]any
			if resp.StatusCode == http.StatusForbidden { // auth.go's refusal is text
				return resp.StatusCode, map[string]any{"error": resp.body}
			}
			if err := json.Unmarshal([]byte(resp.body), &out); err != nil {
				t.Fatalf("%d %s: %v", resp.StatusCode, resp.body, err)
			}
			return resp.StatusCode, out
		}
		before := admin.endOffsets(broker.Topic)
		if st, out := post("admin", adminPassword, `{"id": 1}`); st != http.StatusUnprocessableEntity ||
			!strings.Contains(out["error"].(string), "field id: want a string, got a number") {
			t.Fatalf("%d %v", st, out)
		}
		if st, _ := post("viewer", viewerPassword, string(goodJSON)); st != http.StatusForbidden {
			t.Fatalf("viewer: %d", st)
		}
		if after := admin.endOffsets(broker.Topic); after != before {
			t.Fatalf("end offsets %d, were %d", after, before)
		}
		st, out := post("admin", adminPassword, string(goodJSON))
		if st != http.StatusOK || out["produced"] != true || admin.endOffsets(broker.Topic) != before+1 {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("a topic without a schema takes JSON as it is", func(t *testing.T) {
		resp := admin.post("/topics/"+broker.DLQTopic+"/produce", url.Values{"csrf": {csrf}, "value": {`{"note": "<plain>"}`}})
		m := producedAt.FindStringSubmatch(resp.body)
		if resp.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("%d %.3000s", resp.StatusCode, resp.body)
		}
		got := admin.get("/api/ui/topics/" + broker.DLQTopic + "/messages?mode=offset&partition=" + m[1] + "&offset=" + m[2] + "&limit=1")
		if !strings.Contains(got.body, `\"note\": \"\u003cplain\u003e\"`) || !strings.Contains(got.body, `"format": "json"`) {
			t.Fatalf("%s", got.body)
		}
	})
}
