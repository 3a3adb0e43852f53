# The image's default configuration: the demo route of the repository's
# vaurien.hcl, vaurien's admin API, and the Toxiproxy-compatible API on
# Toxiproxy's port, so that the image stands in for Toxiproxy's where a
# compose file or a test harness talks to port 8474. Everything listens on
# every interface of the container. Mount your own file over
# /etc/vaurien/vaurien.hcl.

admin {
  listen = "0.0.0.0:8080"
  token  = env("VAURIEN_ADMIN_TOKEN", "")
}

# TOXIPROXY_AUTH_TOKEN, when set on the container, is the token its
# mutating calls need, as with Toxiproxy's image.
toxiproxy {
  listen = "0.0.0.0:8474"
}

# docker stop sends SIGTERM and kills 10s later: drain for less, so that
# live connections get time to finish and vaurien still exits 0.
drain = "5s"

log {
  level  = env("VAURIEN_LOG_LEVEL", "info")
  format = "json"
}

route "demo" {
  listen   = "0.0.0.0:8000"
  backend  = "demo:http"
  protocol = "http"

  behavior "delay" {
    percent = 50
    sleep   = "500ms"
  }
}
