package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/userstream/userstream/internal/login"
)

// sessionCookie names the cookie that carries a login.Session's id.
const sessionCookie = "userstream_session"

type sessionKey struct{}

func sessionOf(r *http.Request) *login.Session {
	se, _ := r.Context().Value(sessionKey{}).(*login.Session)
	return se
}

// current returns the request's login: its session cookie, or (for the
// JSON twins and scripts) HTTP basic auth or a bearer token.
func (s *Server) current(r *http.Request) *login.Session {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if se := s.sessions.Get(c.Value); se != nil {
			return se
		}
	}
	if !isTwin(r.URL.Path) {
		return nil
	}
	u, err := s.cfg.Auth.Request(r)
	if err != nil {
		return nil
	}
	// A request-scoped session: no cookie, no CSRF (no browser carries it).
	return &login.Session{User: u, Expires: time.Now().Add(time.Minute)}
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
func checkCSRF(r *http.Request, se *login.Session) bool {
	if se.CSRF == "" { // basic auth or a token: no browser, no forgery
		return r.Header.Get("Authorization") != ""
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(se.CSRF)) == 1
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
		if !se.User.Role.Admin() {
			forbidden(w, "user "+se.User.Name+" ("+string(se.User.Role)+") may look but not change anything")
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
	u, err := s.cfg.Auth.Login(r.Context(), login.ClientAddr(r), r.PostFormValue("username"), r.PostFormValue("password"))
	if err != nil {
		if errors.Is(err, login.ErrTooManyFailures) {
			fail(http.StatusTooManyRequests, "Too many failed logins from your address; wait a minute.")
			return
		}
		if errors.Is(err, login.ErrUnauthorized) {
			fail(http.StatusUnauthorized, "Wrong user name or password.")
			return
		}
		s.log.Error("web: login", "err", err)
		fail(http.StatusInternalServerError, "The metadata store failed; see the server's log.")
		return
	}
	se := s.sessions.Create(u)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: se.ID, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.cfg.Secure || r.TLS != nil, Expires: se.Expires})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if se := s.sessions.Get(c.Value); se != nil && checkCSRF(r, se) {
			s.sessions.Drop(c.Value)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// pathEscape escapes one path segment.
func pathEscape(s string) string { return url.PathEscape(s) }
