package login

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// SessionTTL is how long a web UI session lasts.
const SessionTTL = 12 * time.Hour

// Session is one web UI login: who, until when, and the token its forms
// carry against cross-site requests.
type Session struct {
	ID      string
	User    User
	CSRF    string
	Expires time.Time
}

// Sessions are the web UI's sessions, kept in memory: a restart logs
// everyone out, which is the safe side for a development tool. They are
// safe for concurrent use.
type Sessions struct {
	mu   sync.Mutex
	byID map[string]*Session
	now  func() time.Time
}

// NewSessions returns an empty set of sessions.
func NewSessions() *Sessions {
	return &Sessions{byID: map[string]*Session{}, now: time.Now}
}

// RandomToken returns 32 random bytes, base64url: a session id, a CSRF
// token.
func RandomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Create starts a session for u, lasting SessionTTL, and forgets the
// expired ones.
func (ss *Sessions) Create(u User) *Session {
	now := ss.now()
	se := &Session{ID: RandomToken(), User: u, CSRF: RandomToken(), Expires: now.Add(SessionTTL)}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, old := range ss.byID {
		if now.After(old.Expires) {
			delete(ss.byID, id)
		}
	}
	ss.byID[se.ID] = se
	return se
}

// Get returns the session id names, or nil if there is none or it expired.
func (ss *Sessions) Get(id string) *Session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	se := ss.byID[id]
	if se == nil || ss.now().After(se.Expires) {
		delete(ss.byID, id)
		return nil
	}
	return se
}

// Drop ends the session id names (a logout).
func (ss *Sessions) Drop(id string) {
	ss.mu.Lock()
	delete(ss.byID, id)
	ss.mu.Unlock()
}
