// Package toxiproxy owns vaurien's Toxiproxy-compatible HTTP API: the
// endpoints of Shopify's Toxiproxy (proxies, toxics, populate, reset,
// version) with its JSON shapes, status codes and error objects, so that
// Toxiproxy's clients, its CLI and test harnesses built on them drive
// vaurien unchanged.
//
// A Toxiproxy proxy is a vaurien route: the routes of the file show as
// proxies, and proxies created here are routes the app runs beside them,
// seen by vaurien's own API, metrics and dashboard. A proxy's toxics are
// carried out by one mix entry named "toxics" at 100%, whose behavior
// stacks them as Toxiproxy does: every toxic is drawn on its own with its
// toxicity, instead of one behavior per draw. On stream routes (tcp) the
// toxics also reach live connections: each direction of a connection runs
// a live filter that switches to the new toxics whenever they change, the
// way Toxiproxy re-plumbs its links. On protocol-aware routes each request
// draws the toxics in force through a chaos.Composite, mapped onto vaurien's
// behaviors.
package toxiproxy
