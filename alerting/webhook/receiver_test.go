package webhook

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestReceiver(t *testing.T) {
	now := time.Unix(vectorTimestamp, 0)
	var called []string
	r, err := NewReceiver(ReceiverOptions{Secret: vectorSecret, Now: func() time.Time { return now }, OnDelivery: func(d Delivery) { called = append(called, d.ID) }})
	if err != nil {
		t.Fatal(err)
	}
	send := func(id, body string, sign bool) int {
		req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
		req.Header.Set(HeaderID, id)
		req.Header.Set(HeaderTimestamp, strconv.Itoa(vectorTimestamp))
		sig := "v1,AAAA"
		if sign {
			if sig, err = Sign(vectorSecret, id, now, []byte(body)); err != nil {
				t.Fatal(err)
			}
		}
		req.Header.Set(HeaderSignature, sig)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w.Code
	}
	tests := []struct {
		name, id, body string
		sign           bool
		want           int
	}{
		{"vector", vectorID, vectorPayload, true, http.StatusNoContent},
		{"duplicate", vectorID, vectorPayload, true, http.StatusNoContent},
		{"bad signature", "msg_2", vectorPayload, false, http.StatusUnauthorized},
		{"not json", "msg_3", `{"test":`, true, http.StatusBadRequest},
		{"second", "msg_4", `{}`, true, http.StatusNoContent},
	}
	for _, tt := range tests {
		if got := send(tt.id, tt.body, tt.sign); got != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.want)
		}
	}
	ds := r.Deliveries()
	if len(ds) != 2 || ds[0].ID != vectorID || ds[1].ID != "msg_4" || string(ds[0].Payload) != vectorPayload {
		t.Errorf("deliveries %+v, want the vector then msg_4, once each", ds)
	}
	if strings.Join(called, ",") != vectorID+",msg_4" {
		t.Errorf("OnDelivery called for %v", called)
	}
	if r.Requests() != len(tests) {
		t.Errorf("Requests = %d, want %d", r.Requests(), len(tests))
	}
	// The bad signature and the body that is not JSON; the duplicate is no rejection.
	if r.Rejected() != 2 {
		t.Errorf("Rejected = %d, want 2", r.Rejected())
	}
}
