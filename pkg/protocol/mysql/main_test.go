package mysql

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(testenv.WithSkipSummary(m))
}
