package kit

import (
	"math"
	"testing"
)

func TestDecimal(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    uint64
		isOK bool
	}{
		{"0", 0, true},
		{"42", 42, true},
		{"007", 7, true},
		{"9223372036854775808", 1 << 63, true},
		{"18446744073709551615", math.MaxUint64, true},
		{"18446744073709551616", math.MaxUint64, true},
		{"99999999999999999999999", math.MaxUint64, true},
		{"", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1 ", 0, false},
		{"12a", 0, false},
		{"99999999999999999999x", 0, false},
	} {
		n, ok := Decimal([]byte(c.in))
		if n != c.n || ok != c.isOK {
			t.Errorf("Decimal(%q) = %d, %v; want %d, %v", c.in, n, ok, c.n, c.isOK)
		}
	}
}
