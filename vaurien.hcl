# vaurien's default configuration: runs as is on a laptop.
#
# The "demo" route proxies vaurien's small built-in HTTP demo backend and
# delays half of the requests by 500 ms:
#
#   go run ./cmd/vaurien
#   curl -s -w '%{time_total}s\n' http://127.0.0.1:8000/
#
# Point a route's backend at your own service (host:port) to put chaos in
# front of it. The README has the full reference.

admin {
  listen = "127.0.0.1:8080"
}

log {
  level  = "info"
  format = "console"
}

route "demo" {
  listen   = "127.0.0.1:8000"
  backend  = "demo:http"
  protocol = "http"

  behavior "delay" {
    percent = 50
    sleep   = "500ms"
  }
}
