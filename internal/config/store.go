package config

import (
	"time"
)

// Server configures the local server's HTTP side.
type Server struct {
	// TrustedProxies lists the CIDRs of proxies whose forwarded-for header is believed;
	// from any other peer the header is ignored and the peer address is the source.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ForwardedHeader names the header a trusted proxy puts the client address in
	// (default X-Forwarded-For; read from the right, the first address that is not itself
	// a trusted proxy is the source).
	ForwardedHeader string `yaml:"forwarded_header"`
}

// Store names where the copy is kept.
type Store struct {
	Driver string `yaml:"driver"` // sqlite (default) or dynamodb
	Path   string `yaml:"path"`   // sqlite: the database file; default <data dir>/halosync.db
	Table  string `yaml:"table"`  // dynamodb: the table name
	Region string `yaml:"region"` // dynamodb: optional
}

// Queue tunes the embedded queue of the local server.
type Queue struct {
	VisibilitySeconds int `yaml:"visibility_seconds"` // default 30
	MaxReceive        int `yaml:"max_receive"`        // default 5: then the dead-letter queue
	// MaxBacklog is how many changes may wait in the queue before ingest answers 503
	// (default DefaultMaxBacklog; -1: no limit).
	MaxBacklog int `yaml:"max_backlog"`
}

// DefaultMaxBacklog is the embedded queue's default backlog limit: about a minute of the
// local worker's pace on a small machine (docs/PERFORMANCE.md, "The local pipeline under
// load"), so an accepted delivery is applied within about a minute even under overload.
const DefaultMaxBacklog = 20000

// Backlog is how many messages the queue may hold before sends are refused: 0 for no
// limit (max_backlog -1), DefaultMaxBacklog unless set.
func (q Queue) Backlog() int {
	switch {
	case q.MaxBacklog < 0:
		return 0
	case q.MaxBacklog > 0:
		return q.MaxBacklog
	}
	return DefaultMaxBacklog
}

// Visibility is how long a received message stays hidden: 30 s unless set.
func (q Queue) Visibility() time.Duration {
	if q.VisibilitySeconds > 0 {
		return time.Duration(q.VisibilitySeconds) * time.Second
	}
	return 30 * time.Second
}

// Receives is how many times a message is received before it moves to the dead-letter
// queue: 5 unless set.
func (q Queue) Receives() int {
	if q.MaxReceive > 0 {
		return q.MaxReceive
	}
	return 5
}
