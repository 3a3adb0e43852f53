// Package behavior owns vaurien's built-in behaviors: the faults a route's
// mix draws from (delay, error, transient, blackout, hang, abort, down,
// bandwidth, slicer, slow_open, slow_close, timeout, reset_peer, limit_data,
// corrupt and dummy). Each lives in its own file and registers itself with
// chaos.RegisterBehavior from an init function, declaring its options,
// documentation and an HCL example once.
//
// A behavior only describes its fault as a chaos.Effect; the protocol
// serving the connection carries it out. Behaviors that change the bytes
// themselves (bandwidth, slicer, corrupt, limit_data, and error on raw
// streams) do it through chaos.Filter values that relay one direction with
// one pooled buffer and no per-chunk allocation.
//
// Blank-import the package to make the built-ins available.
package behavior
