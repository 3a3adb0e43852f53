// Package chaos owns the contracts between vaurien's engine and its plugins:
// the option declarations that every behavior and protocol makes once, the
// registries that plugins join with one call, the Effect a behavior produces
// for one unit of traffic, the Session a protocol serves, and the weighted,
// seedable Mix from which behaviors are drawn.
//
// It imports only the standard library, so that plugins and the data path
// stay free of the admin, metrics, config and logging layers.
package chaos
