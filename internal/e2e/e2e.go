// Package e2e holds the tests that run the vaurien binary as users do — a
// process of its own, driven by signals and real clients — to prove what
// only a whole process shows: reload under traffic, graceful and forced
// shutdown, file-descriptor exhaustion, memory under hostile clients.
package e2e
