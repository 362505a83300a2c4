package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/userstream/userstream/internal/scheduler"
)

const (
	sessionCookie = "userstream_session"
	sessionTTL    = 12 * time.Hour
)

// session is one login: who, until when, and the token its forms carry.
type session struct {
	id      string
	user    scheduler.User
	csrf    string
	expires time.Time
}

// sessions are kept in memory: a restart logs everyone out, which is the
// safe side for a development tool.
type sessions struct {
	mu   sync.Mutex
	byID map[string]*session
}

func newSessions() *sessions {
	return &sessions{byID: map[string]*session{}}
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (ss *sessions) create(u scheduler.User) *session {
	se := &session{id: randomToken(), user: u, csrf: randomToken(), expires: time.Now().Add(sessionTTL)}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, old := range ss.byID {
		if time.Now().After(old.expires) {
			delete(ss.byID, id)
		}
	}
	ss.byID[se.id] = se
	return se
}

func (ss *sessions) get(id string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	se := ss.byID[id]
	if se == nil || time.Now().After(se.expires) {
		delete(ss.byID, id)
		return nil
	}
	return se
}

func (ss *sessions) drop(id string) {
	ss.mu.Lock()
	delete(ss.byID, id)
	ss.mu.Unlock()
}

type sessionKey struct{}

func sessionOf(r *http.Request) *session {
	se, _ := r.Context().Value(sessionKey{}).(*session)
	return se
}

func remote(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// current returns the request's login: its session cookie, or (for the
// JSON twins and scripts) HTTP basic auth or a bearer token.
func (s *Server) current(r *http.Request) *session {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if se := s.sessions.get(c.Value); se != nil {
			return se
		}
	}
	if !isTwin(r.URL.Path) {
		return nil
	}
	ctx := r.Context()
	var (
		u   scheduler.User
		err error
	)
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		u, err = s.cfg.Auth.CheckTokenFrom(ctx, remote(r), strings.TrimPrefix(h, "Bearer "))
	} else if name, pass, ok := r.BasicAuth(); ok {
		u, err = s.cfg.Auth.LoginFrom(ctx, remote(r), name, pass)
	} else {
		return nil
	}
	if err != nil {
		return nil
	}
	// A request-scoped session: no cookie, no CSRF (no browser carries it).
	return &session{user: u, expires: time.Now().Add(time.Minute)}
}

// viewer lets any login through; without one a page redirects to the
// login and a JSON call answers 401.
func (s *Server) viewer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		se := s.current(r)
		if se == nil {
			s.unauthenticated(w, r)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, se)))
	})
}

func (s *Server) unauthenticated(w http.ResponseWriter, r *http.Request) {
	if isTwin(r.URL.Path) || r.Header.Get("HX-Request") == "true" || r.URL.Path == "/events" {
		w.Header().Set("WWW-Authenticate", `Basic realm="userstream"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "log in first", "status": 401})
		return
	}
	next := r.URL.Path
	if r.Method != http.MethodGet {
		next = "/"
	}
	http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusSeeOther)
}

// checkCSRF verifies a state-changing request's token: the form field (or
// X-CSRF-Token header for htmx) must be the session's.
func checkCSRF(r *http.Request, se *session) bool {
	if se.csrf == "" { // basic auth or a token: no browser, no forgery
		return r.Header.Get("Authorization") != ""
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(se.csrf)) == 1
}

// viewerPost is a POST any login may make (it changes nothing, e.g. a
// compatibility check), still with its CSRF token.
func (s *Server) viewerPost(h http.Handler) http.Handler {
	return s.viewer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !checkCSRF(r, sessionOf(r)) {
			forbidden(w, "missing or wrong CSRF token: reload the page and try again")
			return
		}
		h.ServeHTTP(w, r)
	}))
}

// admin guards a state change: a login with the admin role and the
// session's CSRF token.
func (s *Server) admin(h http.Handler) http.Handler {
	return s.viewer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		se := sessionOf(r)
		if !checkCSRF(r, se) {
			forbidden(w, "missing or wrong CSRF token: reload the page and try again")
			return
		}
		if se.user.Role != scheduler.RoleAdmin {
			forbidden(w, "user "+se.user.Name+" ("+string(se.user.Role)+") may look but not change anything")
			return
		}
		h.ServeHTTP(w, r)
	}))
}

func forbidden(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte("403 forbidden: " + msg + "\n"))
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "login", "Log in", map[string]string{"Next": safeNext(r.URL.Query().Get("next"))})
}

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/"
	}
	return next
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	fail := func(status int, msg string) {
		s.render(w, r, status, "login", "Log in", map[string]string{"Next": next, "Error": msg, "User": r.PostFormValue("username")})
	}
	u, err := s.cfg.Auth.LoginFrom(r.Context(), remote(r), r.PostFormValue("username"), r.PostFormValue("password"))
	if err != nil {
		if errors.Is(err, scheduler.ErrTooManyFailures) {
			fail(http.StatusTooManyRequests, "Too many failed logins from your address; wait a minute.")
			return
		}
		if errors.Is(err, scheduler.ErrUnauthorized) {
			fail(http.StatusUnauthorized, "Wrong user name or password.")
			return
		}
		s.log.Error("web: login", "err", err)
		fail(http.StatusInternalServerError, "The metadata store failed; see the server's log.")
		return
	}
	se := s.sessions.create(u)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: se.id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.cfg.Secure || r.TLS != nil, Expires: se.expires})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if se := s.sessions.get(c.Value); se != nil && checkCSRF(r, se) {
			s.sessions.drop(c.Value)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// pathEscape escapes one path segment.
func pathEscape(s string) string { return url.PathEscape(s) }
