package lambdae2e

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestBootstrapsLinkOnlyWhatTheyCall: each function's bootstrap carries the SDK service
// clients it calls and nothing of config.LoadDefaultConfig's chain (shared files, SSO,
// STS, instance metadata), nor the SQS, SSM and Secrets Manager clients (the queue and the
// configuration are reached by signed calls, internal/signedjson); the read and publish
// functions carry none of the pipeline. Each package linked is initialised at every cold
// start (docs/PERFORMANCE.md, "Cold start").
func TestBootstrapsLinkOnlyWhatTheyCall(t *testing.T) {
	const sdk, app = "github.com/aws/aws-sdk-go-v2/", "github.com/halosync/halosync/internal/"
	never := []string{sdk + "config", sdk + "credentials", sdk + "feature/ec2/imds", sdk + "service/sso", sdk + "service/ssooidc",
		sdk + "service/sts", sdk + "service/signin", sdk + "service/ssm", sdk + "service/secretsmanager", sdk + "service/sqs"}
	services := []string{"dynamodb", "eventbridge"}
	tests := []struct {
		fn       string
		services []string
		without  []string
	}{
		{"ingest", nil, nil},
		{"worker", []string{"dynamodb"}, nil},
		{"poller", []string{"dynamodb"}, nil},
		{"read", []string{"dynamodb"}, []string{app + "config", app + "pipeline", app + "awslambda", "go.yaml.in/yaml/v3"}},
		{"publish", []string{"dynamodb", "eventbridge"}, []string{app + "config", app + "pipeline", app + "awslambda", "go.yaml.in/yaml/v3"}},
	}
	for _, tt := range tests {
		t.Run(tt.fn, func(t *testing.T) {
			cmd := exec.Command("go", "list", "-deps", "-tags", makefileTags(t), "./functions/"+tt.fn)
			cmd.Dir = root
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			deps := strings.Fields(string(out))
			for _, d := range deps {
				for _, n := range append(never, tt.without...) {
					if d == n || strings.HasPrefix(d, n+"/") {
						t.Errorf("links %s", d)
					}
				}
			}
			for _, s := range services {
				if linked, want := slices.Contains(deps, sdk+"service/"+s), slices.Contains(tt.services, s); linked != want {
					t.Errorf("links the %s client: %v, want %v", s, linked, want)
				}
			}
		})
	}
}
