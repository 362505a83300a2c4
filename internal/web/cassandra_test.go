package web_test

import (
	"os"
	"testing"
	"time"

	"github.com/userstream/userstream/internal/engines/enginestest"
	"github.com/userstream/userstream/internal/login"
)

// The shared Cassandra node (CassandraAddr) is killed when the tests end.
func TestMain(m *testing.M) { os.Exit(enginestest.RunWithCassandra(m)) }

// TestUsersPageCassandra: the users page's keyset paging, stats, search
// and nationality filter on a real Cassandra 5.0 sink (the stream stores
// 300 users there first).
func TestUsersPageCassandra(t *testing.T) {
	addr := enginestest.CassandraAddr(t)
	f := newFixture(t, withSink("cassandra://"+addr+"/"+enginestest.Keyspace(t, addr)))
	f.produce(t, 300)
	stop := f.startStream(t)
	defer stop()
	f.waitStored(t, 300, 120*time.Second)
	checkUsersAPI(t, f.loggedIn(t, login.ViewerUser, viewerPassword), 300)
}
