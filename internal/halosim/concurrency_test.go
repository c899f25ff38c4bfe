package halosim_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/halosim"
)

// TestConcurrentUse runs the generator, the API, the data API and a sender at once (for
// the race detector).
func TestConcurrentUse(t *testing.T) {
	f, rng := seeded(t, 11)
	r := newReceiver(t)
	s := halosim.NewSender(halosim.SenderOptions{URL: r.URL, Tenant: f.Tenant, Batch: 4})
	tok := f.token()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // the generator
		defer wg.Done()
		for range 300 {
			s.Send(f.Step(rng))
		}
		close(stop)
	}()
	for range 3 {
		wg.Add(1)
		go func() { // pollers
			defer wg.Done()
			client := &http.Client{}
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, f.URL()+"/api/Tickets?pageinate=true&page_size=50&page_no=1", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				var p page
				err = json.NewDecoder(resp.Body).Decode(&p)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					t.Errorf("poll: %d %v", resp.StatusCode, err)
					return
				}
				_ = f.Objects(change.Action)
			}
		}()
	}
	wg.Add(1)
	go func() { // the sender
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Flush(context.Background()); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	if _, err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	bodies, _ := r.received()
	if got := len(messageIDs(t, bodies)); got != 300 {
		t.Fatalf("%d events delivered", got)
	}
}

func TestNewHandlerMounted(t *testing.T) {
	ten := halosim.NewHandler(halosim.Options{})
	srv := httptest.NewServer(ten)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/authinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil || info["auth_url"] != srv.URL+"/auth" {
		t.Fatalf("authinfo %v %v", info, err)
	}
	if ten.URL() != "" {
		t.Fatalf("URL() = %q", ten.URL())
	}
}

func TestCloseEndsInjectedDelays(t *testing.T) {
	ten := halosim.New(halosim.Options{})
	ten.FailNext(1, halosim.Slow(time.Hour))
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(ten.URL() + "/api/authinfo")
		if err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(50 * time.Millisecond) // the request reaches the tenant and waits
	began := time.Now()
	ten.Close()
	ten.Close() // twice is fine
	<-done
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("Close took %v", took)
	}
}
