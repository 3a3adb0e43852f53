// Package depcheck holds the test that keeps vaurien's dependency direction
// true: the data path (contracts, behaviors, protocols, relay, engine)
// imports none of the admin, metrics, config or logging libraries.
package depcheck
