package toxiproxy

import (
	"testing"

	"go.uber.org/goleak"
)

// The filters and live relays start goroutines: none may outlive a test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
