package verify

import "time"

// Report is what verification holds for one connection over its window, as GET /status,
// `halosync status` and the dashboard page show it.
type Report struct {
	WindowHours float64               `json:"window_hours"`
	All         KindReport            `json:"all"`
	Kinds       map[string]KindReport `json:"kinds"`
}

// KindReport is one kind's verification over the window, or the whole connection's.
type KindReport struct {
	Checked       int            `json:"checked"`
	Equal         int            `json:"equal"`
	Differing     map[string]int `json:"differing,omitempty"` // by cause
	Repaired      int            `json:"repaired"`
	Estimate      float64        `json:"estimate"` // share equal, 0..1
	Low           float64        `json:"low"`      // 95% Wilson interval
	High          float64        `json:"high"`
	LastCheckedAt time.Time      `json:"last_checked_at,omitzero"`
}
