package localserver

// BodyBytesInFlight is the webhook body bytes admitted now: tests wait on it rather than
// on time.
func (s *Server) BodyBytesInFlight() int64 {
	s.bodies.mu.Lock()
	defer s.bodies.mu.Unlock()
	return s.bodies.used
}
