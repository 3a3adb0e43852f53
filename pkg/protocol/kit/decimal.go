package kit

import "math"

// Decimal reads b as an unsigned decimal number, the way lengths are
// written in text protocols. ok is false when b is empty or holds anything
// but the digits 0 to 9. A number too large for a uint64 reads as
// math.MaxUint64, so that a caller's own limit refuses it.
func Decimal(b []byte) (n uint64, ok bool) {
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			n = math.MaxUint64
			continue
		}
		n = n*10 + d
	}
	return n, len(b) > 0
}
