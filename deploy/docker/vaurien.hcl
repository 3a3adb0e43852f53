# The image's default configuration: the demo route, and the admin API on
# every interface of the container. Mount your own file over
# /etc/vaurien/vaurien.hcl.

admin {
  listen = "0.0.0.0:8080"
  token  = env("VAURIEN_ADMIN_TOKEN", "")
}

# docker stop sends SIGTERM and kills 10s later: drain for less, so that
# live connections get time to finish and vaurien still exits 0.
drain = "5s"

log {
  level  = env("VAURIEN_LOG_LEVEL", "info")
  format = "json"
}

route "demo" {
  listen  = "0.0.0.0:8000"
  backend = "demo:http"

  behavior "delay" {
    percent = 50
    sleep   = "500ms"
  }
}
