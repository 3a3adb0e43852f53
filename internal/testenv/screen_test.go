package testenv

import (
	"slices"
	"testing"
)

func TestScreen(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want []string
	}{
		{"one\r\ntwo\r\n", []string{"one", "two"}},
		{"\x1b[1mbold\x1b[0m plain\n", []string{"bold plain"}},
		// Redrawn in place: up two lines, each erased and written again.
		{"\r\x1b[Kfirst 1\n\r\x1b[Ksecond 1\n\x1b[2A\r\x1b[Kfirst 2\n\r\x1b[Kx\n", []string{"first 2", "x"}},
		// Overwritten without erasing: the rest of the old line stays.
		{"abcdef\rXY\n", []string{"XYcdef"}},
		{"a\n\x1b[5Ab\n", []string{"b"}}, // no higher than the top
	} {
		if got := Screen(tc.out); !slices.Equal(got, tc.want) {
			t.Errorf("Screen(%q) = %q, want %q", tc.out, got, tc.want)
		}
	}
}
