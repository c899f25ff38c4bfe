package poller_test

import (
	"testing"

	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/poller"
)

// The poller's share is a share of the tenant's limit (300 per 5 minutes), or of a budget
// set above it, and never more than the budget.
func TestTheShareIsAPartOfTheTenantsLimit(t *testing.T) {
	for _, tt := range []struct {
		name   string
		budget config.Budget
		share  float64
		want   int
	}{
		{"default budget, default share", config.Budget{}, 0, 100},
		{"a half", config.Budget{}, 0.5, 150},
		{"never above the budget", config.Budget{Requests: 120}, 0.5, 120},
		{"a budget above the tenant's limit", config.Budget{Requests: 900}, 0, 300},
		{"a one-minute window", config.Budget{Requests: 50, WindowSeconds: 60}, 0, 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Connection{ID: "default", Halo: config.Halo{Budget: tt.budget}, Poll: config.Poll{Share: tt.share}}
			conn, err := connection.Compile(c)
			if err != nil {
				t.Fatal(err)
			}
			b := haloapi.NewBudget(tt.budget.Count(), tt.budget.Window(), nil)
			if got, _ := poller.ShareOf(conn, b).Limit(); got != tt.want {
				t.Errorf("share %d requests per window, want %d", got, tt.want)
			}
		})
	}
}
