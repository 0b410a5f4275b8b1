package httpapi

import "testing"

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
