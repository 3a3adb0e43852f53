// Package proxy is vaurien's data path: it listens for each route, accepts
// connections, enforces max_connections, hands each connection to the
// route's protocol with a Session that dials the backend and draws from the
// route's live mix, tracks live connections, applies reloads without
// touching unchanged routes, and drains on shutdown. It reports through the
// Observer interface it declares and imports no metrics, logging or admin
// library.
package proxy
