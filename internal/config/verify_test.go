package config

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// verify: is checked where the file is read, naming the connection and the key.
func TestVerifyKeysAreValidated(t *testing.T) {
	for _, c := range []struct{ section, want string }{
		{"{share: most}", `verify.share "most"`},
		{"{share: 1.5}", `verify.share "1.5"`},
		{"{share: 0}", `verify.share "0"`},
		{"{window_hours: -1}", "verify.window_hours -1"},
		{"{window_hours: 745}", "verify.window_hours 745"},
		{"{alarm_below: 101}", "verify.alarm_below 101"},
		{"{enabled: sometimes}", ""},
	} {
		doc := example + "    verify: " + c.section + "\n"
		_, err := Parse(context.Background(), []byte(doc), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("verify: %s: err %v, want %q", c.section, err, c.want)
		}
		if c.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "connection")) {
			t.Errorf("verify: %s: err %v, want ErrInvalid naming the connection", c.section, err)
		}
	}
	for section, want := range map[string]float64{"": 0, "{share: unused}": 0, "{share: 0.25}": 0.25, `{share: "1"}`: 1} {
		cfg, err := Parse(context.Background(), []byte(example+"    verify: "+section+"\n"), nil)
		if section == "" {
			cfg, err = Parse(context.Background(), []byte(example), nil)
		}
		if err != nil {
			t.Fatalf("verify: %s: %v", section, err)
		}
		if got, err := cfg.Connections[0].Verify.Fraction(); err != nil || got != want {
			t.Errorf("verify: %s: fraction %v, %v; want %v", section, got, err, want)
		}
	}
}
