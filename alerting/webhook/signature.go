// Package webhook delivers drift alerts as signed HTTP POSTs following the
// Standard Webhooks specification (https://www.standardwebhooks.com), so a
// receiver can verify them with any Standard Webhooks library, and provides
// a verifying Receiver for tests and the demo.
//
// It owns payloads, templates (generic JSON, Airflow, GitHub, Argo Events,
// Jenkins, user templates), authentication, signing and one signed attempt per
// Send; it does not retry (the outbox does) and follows no redirect. It imports
// only alerting: not the policy or the outbox, and nothing under internal/.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every Standard Webhooks secret; the rest is the
// base64 key.
const SecretPrefix = "whsec_"

// Tolerance is how far a webhook-timestamp may be from now for Verify to
// accept it; it bounds replay of captured requests.
const Tolerance = 5 * time.Minute

// Verification failures, for receivers that answer differently per cause.
var (
	ErrMissingHeaders = errors.New("missing webhook-id, webhook-timestamp or webhook-signature header")
	ErrTimestamp      = errors.New("webhook-timestamp outside the tolerance")
	ErrSignature      = errors.New("no matching signature")
)

// decodeSecret returns the HMAC key of a "whsec_<base64>" secret (the
// prefix is optional, as in the reference libraries). The error never
// contains the secret.
func decodeSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil {
		return nil, errors.New("decode secret: want whsec_ followed by base64")
	}
	if len(key) == 0 {
		return nil, errors.New("decode secret: empty key")
	}
	return key, nil
}

// GenerateSecret returns a new random secret ("whsec_" + base64 of 32
// bytes) to share with a receiver.
func GenerateSecret() (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("cannot generate secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// Sign returns the webhook-signature header value for a message:
// "v1," + base64(HMAC-SHA256(key, id + "." + unix seconds + "." + body)).
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, ts.Unix(), body)), nil
}

func mac(key []byte, id string, unix int64, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write(strconv.AppendInt(nil, unix, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks a received message: the three headers are present, the
// timestamp is within Tolerance of now, and one of the space-separated "v1,"
// signatures matches (compared in constant time). Errors wrap
// ErrMissingHeaders, ErrTimestamp or ErrSignature.
func Verify(secret string, h http.Header, body []byte, now time.Time) error {
	key, err := decodeSecret(secret)
	if err != nil {
		return err
	}
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return ErrMissingHeaders
	}
	unix, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("decode webhook-timestamp: %w", ErrTimestamp)
	}
	if d := now.Sub(time.Unix(unix, 0)); d > Tolerance || d < -Tolerance {
		return fmt.Errorf("webhook-timestamp %d is %s from now: %w", unix, d.Round(time.Second), ErrTimestamp)
	}
	want := mac(key, id, unix, body)
	for _, s := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrSignature
}
