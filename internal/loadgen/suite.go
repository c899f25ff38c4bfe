package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Suite is what `make load` runs against `halosync serve`.
type Suite struct {
	Bin        string        // the halosync binary
	Dir        string        // scratch space: data directories, configuration, logs
	Rates      []int         // fixed rates, deliveries per second
	Clients    []int         // saturation phases, closed-loop clients each
	Window     time.Duration // how long each phase sends
	Drain      time.Duration // bound on each phase's wait for its backlog (0: 2 minutes)
	Senders    int           // fixed rate: senders at most at once
	Tickets    int           // the ticket pool the deliveries spread over
	MaxBacklog int           // queue.max_backlog; 0: the default
	Kills      int           // kill -9 runs
	KillAfter  time.Duration // how long each kill run sends before the kill
	Out        io.Writer
}

// Run runs the phases on one server (fresh data directory), then the kill runs, each on
// a fresh data directory, printing Markdown as it goes.
func (s Suite) Run(ctx context.Context) error {
	if s.Bin == "" {
		return errors.New("loadgen: no halosync binary given")
	}
	out := s.Out
	cfg := filepath.Join(s.Dir, "halosync.yaml")
	if err := os.WriteFile(cfg, []byte(ServeConfig(30, s.MaxBacklog)), 0o600); err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	srv, err := StartServe(ctx, s.Bin, filepath.Join(s.Dir, "phases"), cfg)
	if err != nil {
		return err
	}
	defer srv.Stop()
	target := NewHTTP(srv.URL, max(s.Senders, slices.Max(append([]int{0}, s.Clients...))))
	gen := NewGen(1, s.Tickets)
	_, base := srv.RSS()
	fmt.Fprintf(out, "halosync serve at %s; peak RSS at start %.0f MiB\n\n%s\n", srv.URL, mib(base), Header("RSS after"))
	for _, rate := range s.Rates {
		r, err := Rate(ctx, target, gen, rate, s.Window, s.Senders, Options{Drain: s.Drain})
		if err != nil {
			return err
		}
		s.row(out, srv, r)
	}
	for _, c := range s.Clients {
		r, err := Saturate(ctx, target, gen, c, s.Window, Options{Drain: s.Drain})
		if err != nil {
			return err
		}
		s.row(out, srv, r)
	}
	_, peak := srv.RSS()
	fmt.Fprintf(out, "\npeak RSS of serve over the phases: %.0f MiB\n", mib(peak))
	srv.Stop()

	if s.Kills > 0 {
		fmt.Fprintf(out, "\n| kill -9 run | acknowledged | queued at restart | all processed after restart | recorded | lost |\n|---|---|---|---|---|---|\n")
	}
	for i := 1; i <= s.Kills; i++ {
		k, err := s.killRun(ctx, i, cfg)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "| %d | %d | %d | %.2f s | %d | %d |\n", i, k.acked, k.queued, k.drain.Seconds(), k.recorded, k.acked-k.recorded)
	}
	return nil
}

func (s Suite) row(out io.Writer, srv *Serve, r Result) {
	now, _ := srv.RSS()
	fmt.Fprintf(out, "%s %.0f MiB |\n", r.Row(), mib(now))
}

type killResult struct {
	acked, queued, recorded int
	drain                   time.Duration
}

// killRun sends deliveries from 32 clients for KillAfter, kills serve with SIGKILL while
// they are sending, restarts it on the same data directory, waits until its queue is
// empty and checks that every delivery answered 200 has its delivery record.
func (s Suite) killRun(ctx context.Context, run int, cfg string) (killResult, error) {
	var k killResult
	dir := filepath.Join(s.Dir, fmt.Sprintf("kill-%d", run))
	srv, err := StartServe(ctx, s.Bin, dir, cfg)
	if err != nil {
		return k, err
	}
	target := NewHTTP(srv.URL, 32)
	gen := NewGen(uint32(100+run), s.Tickets)
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				d := gen.Next()
				if status, err := target.Deliver(ctx, d.Body); err == nil && status == http.StatusOK {
					mu.Lock()
					acked = append(acked, d.ID)
					mu.Unlock()
				} else if err != nil {
					return // the server is gone
				}
			}
		}()
	}
	time.Sleep(s.KillAfter)
	srv.Kill()
	close(stop)
	wg.Wait()

	srv, err = StartServe(ctx, s.Bin, dir, cfg)
	if err != nil {
		return k, err
	}
	defer srv.Stop()
	restarted := time.Now()
	target = NewHTTP(srv.URL, 4)
	first := true
	for {
		visible, inFlight, err := target.QueueDepth(ctx)
		if err != nil {
			return k, err
		}
		if first {
			k.queued, first = visible+inFlight, false
		}
		if visible+inFlight == 0 {
			k.drain = time.Since(restarted)
			break
		}
		if time.Since(restarted) > 2*time.Minute {
			return k, fmt.Errorf("loadgen: kill run %d: the queue still holds %d messages 2 minutes after the restart", run, visible+inFlight)
		}
		time.Sleep(10 * time.Millisecond)
	}
	k.acked = len(acked)
	for _, id := range acked {
		ok, err := target.Recorded(ctx, id)
		if err != nil {
			return k, err
		}
		if ok {
			k.recorded++
		}
	}
	return k, nil
}

// QueueDepth reads the change queue's depth from /status.
func (h *HTTP) QueueDepth(ctx context.Context) (visible, inFlight int, err error) {
	var st struct {
		Queue struct {
			Visible  int `json:"visible"`
			InFlight int `json:"in_flight"`
		} `json:"queue"`
	}
	if _, err := h.get(ctx, "/status", &st); err != nil {
		return 0, 0, err
	}
	return st.Queue.Visible, st.Queue.InFlight, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
