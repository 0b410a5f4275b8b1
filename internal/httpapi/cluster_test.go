package httpapi

import (
	"strings"
	"testing"
)

// TestCluster: /api/v1/cluster and /api/v1/streams say the source's role as it is
// now, and only a follower is not where windows and alerts are read.
func TestCluster(t *testing.T) {
	f := newFixture(t)
	h := f.srv.Handler()
	for _, tt := range []struct {
		role   string
		leader bool
	}{
		{roleSingle, true},
		{roleLeader, true},
		{roleFollower, false},
	} {
		t.Run(tt.role, func(t *testing.T) {
			f.src.setRole(tt.role)
			code, _, body := do(t, h, "GET", "/api/v1/cluster", "", "")
			if v := decode(t, body); code != 200 || v["role"] != tt.role || v["leader"] != tt.leader {
				t.Errorf("/api/v1/cluster = %d %s, want role %q and leader %v", code, body, tt.role, tt.leader)
			}
			code, _, body = do(t, h, "GET", "/api/v1/streams", "", "")
			if v := decode(t, body); code != 200 || v["role"] != tt.role {
				t.Errorf("/api/v1/streams = %d, role %v, want %q", code, v["role"], tt.role)
			}
		})
	}
}

// TestClusterWithoutSource: a server without a monitor is one process on its own.
func TestClusterWithoutSource(t *testing.T) {
	h := New(Options{}).Handler()
	code, _, body := do(t, h, "GET", "/api/v1/cluster", "", "")
	if v := decode(t, body); code != 200 || v["role"] != roleSingle || v["leader"] != true {
		t.Errorf("/api/v1/cluster = %d %s, want single and leader", code, body)
	}
	code, _, body = do(t, h, "GET", "/readyz", "", "")
	if v := decode(t, body); code != 200 || v["role"] != roleSingle {
		t.Errorf("/readyz = %d %s, want 200 and single", code, body)
	}
}

// TestFollowerRefusesSilences: a follower answers 503 to the silence calls instead of
// keeping a silence that would mute nothing (the leader's policy consults its own
// set); the leader and a single process take them.
func TestFollowerRefusesSilences(t *testing.T) {
	f := newFixture(t)
	h := f.srv.Handler()
	create := `{"stream":"credit","duration":"1h"}`
	for _, tt := range []struct {
		role string
		code int
	}{
		{roleFollower, 503},
		{roleLeader, 201},
		{roleSingle, 201},
	} {
		f.src.setRole(tt.role)
		if code, _, body := do(t, h, "POST", "/api/v1/silences", testToken, create); code != tt.code {
			t.Errorf("%s: POST /api/v1/silences = %d %s, want %d", tt.role, code, body, tt.code)
		}
	}
	f.src.setRole(roleFollower)
	if code, _, body := do(t, h, "GET", "/api/v1/silences", "", ""); code != 503 || !strings.Contains(string(body), "leader") {
		t.Errorf("follower: GET /api/v1/silences = %d %s, want 503 naming the leader", code, body)
	}
	if code, _, _ := do(t, h, "DELETE", "/api/v1/silences/sil_x", testToken, ""); code != 503 {
		t.Errorf("follower: DELETE /api/v1/silences/sil_x = %d, want 503", code)
	}
}
