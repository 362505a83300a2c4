package web

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/broker"
	"github.com/userstream/userstream/internal/testwait"
)

// endless is a Kafka whose topic never ends: its Scan hands out messages
// until the scan is stopped, counting them.
type endless struct {
	Kafka
	given    atomic.Int64
	returned chan error
}

func (k *endless) Scan(ctx context.Context, q broker.ScanQuery, each func(broker.Message) bool) (broker.ScanProgress, error) {
	var p broker.ScanProgress
	for i := int64(0); ; i++ {
		if err := ctx.Err(); err != nil {
			k.returned <- err
			return p, err
		}
		k.given.Add(1)
		p.Scanned++
		if !each(broker.Message{Topic: q.Topic, Offset: i, Value: []byte(`{"email":"someone@example.org"}`)}) {
			k.returned <- nil
			return p, nil
		}
		if q.Progress != nil && i%1000 == 0 {
			q.Progress(p)
		}
	}
}

// TestSearchCancel: a client that leaves (the page's Cancel closes its
// stream) cancels the request's context, and the scan stops: Scan returns
// and no message is handed out after it.
func TestSearchCancel(t *testing.T) {
	k := &endless{returned: make(chan error, 1)}
	s := &Server{cfg: Config{Kafka: k}, mux: http.NewServeMux(), log: slog.New(slog.DiscardHandler)}
	handled := make(chan struct{})
	s.mux.HandleFunc("GET /api/ui/topics/{topic}/search", func(w http.ResponseWriter, r *http.Request) {
		defer close(handled)
		s.searchNDJSON(w, r)
	})
	srv := httptest.NewServer(s.mux)
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/ui/topics/t/search?field=email&value=nobody@example.org", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var e searchEvent
	for e.Scanned < 5000 && sc.Scan() { // the scan is under way
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
	}
	if e.Type != "progress" || e.Scanned < 5000 {
		t.Fatalf("last event %+v, want progress past 5000 scanned", e)
	}
	cancel() // what the Cancel button does: the stream is closed
	select {
	case err := <-k.returned:
		if err == nil {
			t.Fatal("the scan ended by itself, not by the cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the scan still runs 5 s after the cancel (%d messages handed out)", k.given.Load())
	}
	testwait.For(t, 5*time.Second, "the handler returns", func() (bool, bool) {
		select {
		case <-handled:
			return true, true
		default:
			return false, false
		}
	})
	stopped := k.given.Load()
	if stopped >= searchMaxScanned {
		t.Fatalf("%d messages scanned: the cancel did not stop the scan before its bound", stopped)
	}
	t.Logf("cancelled after %d messages", stopped)
}
