package login

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// Claims are an access token's claims, as Airflow 3's simple auth manager
// puts them in its JWTs: the user (sub), its role, when it was issued and
// until when it holds (Unix seconds), and a unique id; and one of ours,
// Password, a keyed digest of the user's password hash when the token was
// issued, so that changing the password revokes its tokens.
type Claims struct {
	Subject   string `json:"sub"`
	Role      Role   `json:"role"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	Expires   int64  `json:"exp"`
	ID        string `json:"jti"`
	Password  string `json:"pwv"`
}

// jwtHeader is the only header signJWT writes and verifyJWT accepts: alg
// none and every other algorithm are refused, so a token cannot choose how
// it is checked.
var jwtHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// signJWT returns c as a compact JWT signed with HS256 and key.
func signJWT(key []byte, c Claims) string {
	body, _ := json.Marshal(c) // Claims always encode
	signed := jwtHeader + "." + base64.RawURLEncoding.EncodeToString(body)
	return signed + "." + base64.RawURLEncoding.EncodeToString(mac(key, signed))
}

// verifyJWT returns the claims of token if it is an HS256 JWT signed with
// key that holds at now; otherwise ok is false. The signature is checked
// (in constant time) before the claims are read.
func verifyJWT(key []byte, token string, now time.Time) (c Claims, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, false
	}
	var h struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(raw, &h) != nil || h.Alg != "HS256" || (h.Typ != "" && h.Typ != "JWT") {
		return Claims{}, false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac(key, parts[0]+"."+parts[1])) {
		return Claims{}, false
	}
	raw, err = base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(raw, &c) != nil || c.Subject == "" {
		return Claims{}, false
	}
	if t := now.Unix(); c.Expires == 0 || t >= c.Expires || t < c.NotBefore {
		return Claims{}, false
	}
	return c, true
}

func mac(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}
