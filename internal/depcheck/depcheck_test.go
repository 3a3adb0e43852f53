package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

// dataPath are the packages that move bytes; forbidden are the module
// paths they must never depend on, directly or not.
var (
	dataPath = []string{
		"github.com/vaurien-go/vaurien/pkg/chaos",
		"github.com/vaurien-go/vaurien/pkg/behavior",
		"github.com/vaurien-go/vaurien/pkg/relay",
		"github.com/vaurien-go/vaurien/pkg/proxy",
		"github.com/vaurien-go/vaurien/pkg/protocol/...",
	}
	forbidden = []string{
		"github.com/labstack/echo",
		"github.com/prometheus/",
		"github.com/hashicorp/hcl",
		"github.com/zclconf/go-cty",
		"github.com/rs/zerolog",
	}
)

func TestDataPathImportsNoOuterLayer(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, dataPath...)
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("the data path depends on %s; report through an interface the outer layer implements instead", dep)
			}
		}
	}
}
