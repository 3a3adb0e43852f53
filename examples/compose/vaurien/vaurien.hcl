# vaurien's configuration in the compose example: one route per backend of
# the app. Edit it and reload (docker compose kill -s HUP vaurien, or
# curl -XPOST localhost:8080/reload): changed mixes apply to the next
# requests, without dropping the app's connections.

admin {
  listen = "0.0.0.0:8080" # published on the host's 127.0.0.1 only
  token  = env("VAURIEN_ADMIN_TOKEN", "")
}

log {
  level  = env("VAURIEN_LOG_LEVEL", "info")
  format = "json"
}

# docker stop gives 10s before SIGKILL: drain for less.
drain = "5s"

route "redis" {
  listen   = "0.0.0.0:6379"
  backend  = "redis:6379"
  protocol = "redis"
  default  = true # the route the original API (PUT /behavior) acts on
}

route "memcached" {
  listen   = "0.0.0.0:11211"
  backend  = "memcached:11211"
  protocol = "memcache"
}

route "web" {
  listen   = "0.0.0.0:8000"
  backend  = "web:80"
  protocol = "http"

  # A little latency from the start: it shows in the app's p99 and on the
  # dashboard, and no call fails.
  behavior "delay" {
    percent = 10
    sleep   = "100ms"
  }
}
