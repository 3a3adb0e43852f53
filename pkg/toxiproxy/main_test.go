package toxiproxy

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// The filters and live relays start goroutines: none may outlive a test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(testenv.WithSkipSummary(m)) }
