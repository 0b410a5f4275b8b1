package webhook

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The published Standard Webhooks test vector (libraries/go/webhook_test.go
// TestWebhookSign in github.com/standard-webhooks/standard-webhooks).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorPayload   = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignVector(t *testing.T) {
	for _, secret := range []string{vectorSecret, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"} {
		got, err := Sign(secret, vectorID, time.Unix(vectorTimestamp, 0), []byte(vectorPayload))
		if err != nil {
			t.Fatal(err)
		}
		if got != vectorSignature {
			t.Errorf("Sign(%s…) = %s, want %s", secret[:6], got, vectorSignature)
		}
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(vectorTimestamp, 0)
	headers := func(mod func(h http.Header)) http.Header {
		h := http.Header{}
		h.Set(HeaderID, vectorID)
		h.Set(HeaderTimestamp, strconv.Itoa(vectorTimestamp))
		h.Set(HeaderSignature, vectorSignature)
		if mod != nil {
			mod(h)
		}
		return h
	}
	other, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		secret string
		h      http.Header
		body   string
		now    time.Time
		want   error // nil = valid
	}{
		{"vector", vectorSecret, headers(nil), vectorPayload, now, nil},
		{"within tolerance", vectorSecret, headers(nil), vectorPayload, now.Add(Tolerance - time.Second), nil},
		{"several signatures", vectorSecret, headers(func(h http.Header) {
			h.Set(HeaderSignature, "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,xx "+vectorSignature)
		}), vectorPayload, now, nil},
		{"tampered body", vectorSecret, headers(nil), `{"test": 2432232315}`, now, ErrSignature},
		{"old timestamp", vectorSecret, headers(nil), vectorPayload, now.Add(Tolerance + time.Second), ErrTimestamp},
		{"future timestamp", vectorSecret, headers(nil), vectorPayload, now.Add(-Tolerance - time.Second), ErrTimestamp},
		{"timestamp not a number", vectorSecret, headers(func(h http.Header) { h.Set(HeaderTimestamp, "1614265330.5") }), vectorPayload, now, ErrTimestamp},
		{"wrong secret", other, headers(nil), vectorPayload, now, ErrSignature},
		{"wrong version", vectorSecret, headers(func(h http.Header) { h.Set(HeaderSignature, "v2"+vectorSignature[2:]) }), vectorPayload, now, ErrSignature},
		{"changed id", vectorSecret, headers(func(h http.Header) { h.Set(HeaderID, "msg_other") }), vectorPayload, now, ErrSignature},
		{"missing signature", vectorSecret, headers(func(h http.Header) { h.Del(HeaderSignature) }), vectorPayload, now, ErrMissingHeaders},
		{"missing id", vectorSecret, headers(func(h http.Header) { h.Del(HeaderID) }), vectorPayload, now, ErrMissingHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.h, []byte(tt.body), tt.now)
			if tt.want == nil && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSecretErrorsHideTheSecret(t *testing.T) {
	_, err := Sign("whsec_not*base64!SECRET", "id", time.Now(), nil)
	if err == nil {
		t.Fatal("Sign accepted a secret that is not base64")
	}
	if s := err.Error(); len(s) == 0 || strings.Contains(s, "SECRET") {
		t.Errorf("error %q leaks the secret", s)
	}
}

func BenchmarkSign(b *testing.B) {
	body := make([]byte, 2048)
	ts := time.Unix(vectorTimestamp, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Sign(vectorSecret, vectorID, ts, body); err != nil {
			b.Fatal(err)
		}
	}
}
