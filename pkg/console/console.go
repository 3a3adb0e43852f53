// Package console holds vaurien's web console: one HTML page, its style
// sheet and its script, embedded in the binary and served by the admin API
// at /ui/. There is no build step and nothing is fetched from elsewhere:
// the page works offline and inside the scratch image. It talks to the
// admin API only: GET /catalog for the behavior declarations its forms are
// built from, GET /events for the live state, and the API's own calls to
// change it.
package console

import "embed"

// Files are the console's files, by name: index.html, console.css,
// console.js and favicon.svg.
//
//go:embed index.html console.css console.js favicon.svg
var Files embed.FS
