package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// The authentication schemes of Auth.Type.
const (
	AuthNone   = "none"
	AuthBearer = "bearer"
	AuthBasic  = "basic"
	AuthHeader = "header"
)

// The signing schemes of Options.Signing.
const (
	// SigningStandard signs per Standard Webhooks: webhook-signature
	// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" with a "whsec_" secret.
	SigningStandard = "standard"
	// SigningGitHub signs the way GitHub signs its own webhooks:
	// X-Hub-Signature-256 "sha256=<hex HMAC-SHA256 of the body>", keyed by
	// the secret's bytes as written.
	SigningGitHub = "github"
)

// HeaderGitHubSignature carries the GitHub-style signature.
const HeaderGitHubSignature = "X-Hub-Signature-256"

// Auth says how a request proves who sends it. Every value but Type and
// Username is a secret: none reaches a log or an error.
type Auth struct {
	// Type is AuthNone (or ""), AuthBearer, AuthBasic or AuthHeader.
	Type string
	// Token is the bearer token of AuthBearer.
	Token string
	// Username and Password are the credentials of AuthBasic; Jenkins takes
	// a user name and an API token here.
	Username, Password string
	// Header and Value are the custom header of AuthHeader, e.g.
	// "X-Api-Key" and the key.
	Header, Value string
}

// check returns every problem of a, each naming its field under path.
func (a Auth) check(path string) []error {
	var errs []error
	switch a.Type {
	case "", AuthNone:
	case AuthBearer:
		if a.Token == "" {
			errs = append(errs, errors.New(path+".token: required with type bearer"))
		}
	case AuthBasic:
		if a.Username == "" {
			errs = append(errs, errors.New(path+".username: required with type basic"))
		}
		if strings.Contains(a.Username, ":") {
			errs = append(errs, errors.New(path+".username: must not contain ':'"))
		}
	case AuthHeader:
		if !validHeaderName(a.Header) {
			errs = append(errs, fmt.Errorf("%s.header: invalid header name %q", path, a.Header))
		}
		if a.Value == "" {
			errs = append(errs, errors.New(path+".value: required with type header"))
		}
	default:
		errs = append(errs, fmt.Errorf("%s.type: %q is not one of none, bearer, basic, header", path, a.Type))
	}
	return errs
}

// apply sets the credentials on a request's header.
func (a Auth) apply(h http.Header) {
	switch a.Type {
	case AuthBearer:
		h.Set("Authorization", "Bearer "+a.Token)
	case AuthBasic:
		r := http.Request{Header: h}
		r.SetBasicAuth(a.Username, a.Password)
	case AuthHeader:
		h.Set(a.Header, a.Value)
	}
}

func validHeaderName(k string) bool {
	return k != "" && !strings.ContainsAny(k, " \t\r\n:")
}

// SignGitHub returns the X-Hub-Signature-256 value of body:
// "sha256=" + hex(HMAC-SHA256(secret, body)).
func SignGitHub(secret string, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write(body)
	return "sha256=" + hex.EncodeToString(h.Sum(nil))
}

// VerifyGitHub checks the X-Hub-Signature-256 header of a received body in
// constant time. It returns ErrMissingHeaders or ErrSignature.
func VerifyGitHub(secret string, h http.Header, body []byte) error {
	got := h.Get(HeaderGitHubSignature)
	if got == "" {
		return ErrMissingHeaders
	}
	if !hmac.Equal([]byte(got), []byte(SignGitHub(secret, body))) {
		return ErrSignature
	}
	return nil
}
