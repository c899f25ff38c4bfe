package localserver

import "net/http"

// BodyBytesInFlight is the webhook body bytes admitted now: tests wait on it rather than
// on time.
func (s *Server) BodyBytesInFlight() int64 {
	s.bodies.mu.Lock()
	defer s.bodies.mu.Unlock()
	return s.bodies.used
}

// DashboardPage serves the dashboard's page and files as GET /dashboard and
// GET /dashboard/{asset} do, with their headers and without the read guard: a test of the
// page alone serves its own /status and /events beside it.
func DashboardPage() http.Handler {
	s := &Server{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dashboard", s.dashboard)
	mux.HandleFunc("GET /dashboard/{asset}", s.dashboardAsset)
	return mux
}
