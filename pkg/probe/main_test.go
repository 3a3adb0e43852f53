package probe

import (
	"os"
	"testing"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.WithSkipSummary(m).Run()) }
