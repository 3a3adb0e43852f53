//go:build !unix

package dockertest

import "testing"

// lockTag does not serialise builds where flock is missing: concurrent
// builds of one tag then only risk leaving an untagged twin image.
func lockTag(testing.TB, string) func() { return func() {} }
