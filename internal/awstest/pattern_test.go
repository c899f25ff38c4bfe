package awstest

import "testing"

func TestMatches(t *testing.T) {
	doc := `{"source":"halosync","detail":{"kind":"ticket","n":3,"tags":["a","b"],"changed":{"team_id":{"from":2,"to":3}}}}`
	for _, c := range []struct {
		pattern string
		want    bool
	}{
		{`{"source":["halosync"]}`, true},
		{`{"source":["other"]}`, false},
		{`{"detail":{"kind":["asset","ticket"]}}`, true},
		{`{"detail":{"n":[3]}}`, true},
		{`{"detail":{"n":["3"]}}`, false},
		{`{"detail":{"tags":["b"]}}`, true},
		{`{"detail":{"kind":[{"prefix":"tick"}]}}`, true},
		{`{"detail":{"kind":[{"suffix":"et"}]}}`, true},
		{`{"detail":{"kind":[{"prefix":"ass"}]}}`, false},
		{`{"detail":{"missing":[{"exists":false}]}}`, true},
		{`{"detail":{"kind":[{"exists":false}]}}`, false},
		{`{"detail":{"changed":{"team_id":{"to":[{"numeric":[">",0]}]}}}}`, true},
		{`{"detail":{"changed":{"team_id":{"to":[{"numeric":[">",3]}]}}}}`, false},
		{`{"detail":{"changed":{"agent_id":{"to":[{"numeric":[">",0]}]}}}}`, false},
		{`{"detail":{"kind":[{"anything-but":["asset"]}]}}`, true},
		{`{"detail":{"kind":[{"anything-but":"ticket"}]}}`, false},
	} {
		got, err := Matches([]byte(c.pattern), []byte(doc))
		if err != nil || got != c.want {
			t.Errorf("%s: %v, %v; want %v", c.pattern, got, err, c.want)
		}
	}
	if _, err := Matches([]byte(`{"a":[{"cidr":"10.0.0.0/8"}]}`), []byte(`{"a":"x"}`)); err == nil {
		t.Error("an unsupported comparison is not an error")
	}
}
