package httpapi

import "net/http"

// The roles Source.Role reports.
const (
	roleSingle   = "single"
	roleLeader   = "leader"
	roleFollower = "follower"
)

// roles are every role, in the order the driftmon_role gauge exports them.
var roles = []string{roleSingle, roleLeader, roleFollower}

// role is the source's role; a server without a source is one process on its own.
func (s *Server) role() string {
	if s.src == nil {
		return roleSingle
	}
	return s.src.Role()
}

// clusterInfo is what GET /api/v1/cluster answers.
type clusterInfo struct {
	Role string `json:"role"`
	// Leader is true when this process judges windows and alerts, so that its
	// windows, findings, alerts and deliveries are the ones the API should be read
	// from: the leader of a cluster, or a single process.
	Leader bool `json:"leader"`
}

func (s *Server) cluster(w http.ResponseWriter, _ *http.Request) {
	role := s.role()
	writeJSON(w, http.StatusOK, clusterInfo{Role: role, Leader: role == roleLeader || role == roleSingle})
}

// leaderOnly answers 503 on a cluster's follower instead of calling next: for the
// silences, which are the leader's (kept with its alert state, which the next leader
// loads), so a silence a follower accepted would mute nothing and be replaced when it
// took over.
func (s *Server) leaderOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.role() == roleFollower {
			refuseBody(w, r)
			writeError(w, http.StatusServiceUnavailable,
				"this process is a cluster follower: silences are the leader's (GET /api/v1/cluster says which process leads)")
			return
		}
		next.ServeHTTP(w, r)
	})
}
