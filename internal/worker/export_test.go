package worker

import "time"

// SetClock sets the clock the worker reads (delivery records, the heartbeat, the batch's
// time left).
func SetClock(w *Worker, now func() time.Time) { w.now = now }
