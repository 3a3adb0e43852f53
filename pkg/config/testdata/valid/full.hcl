# Every setting, each away from its default.
seed  = 42
drain = "30s"

admin {
  listen = "0.0.0.0:9090"
  token  = env("VAURIEN_TEST_SURELY_UNSET", "s3cret")

  allowed_hosts = ["vaurien", "Chaos.Internal."]
}

toxiproxy {
  listen = "127.0.0.1:8474"
}

log {
  level  = "debug"
  format = "console"
}

route "cache" {
  listen          = "127.0.0.1:6380"
  backend         = "localhost:6379"
  protocol        = "test_proto"
  timeout         = "1m30s"
  connect_timeout = 2
  max_connections = 1000
  default         = true

  protocol_options {
    buffer     = 4096
    keep_alive = true
  }

  behavior "test_delay" {
    percent = 20
    sleep   = "500ms"
    before  = false
  }

  behavior "test_error" {
    percent = 5.5
    warmup  = 10
    mode    = "bytes"
  }
}

route "web" {
  listen  = ":8000"
  backend = "demo:http"

  behavior "test_lists" {
    percent = 100
    hosts   = ["a.example", "b.example"]
    codes   = [502, 503]
    ratio   = 0.25
    label   = "$${not interpolated} and \"quoted\""
  }
}
