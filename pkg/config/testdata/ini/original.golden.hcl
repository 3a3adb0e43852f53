admin {
  listen = "0.0.0.0:8081"
}

log {
  level  = "warn"
  format = "json"
}

route "default" {
  listen          = "0.0.0.0:8000"
  backend         = "redis.local:6379"
  protocol        = "test_proto"
  timeout         = "10s"
  connect_timeout = "10s"
  default         = true

  protocol_options {
    keep_alive = true
  }

  behavior "test_delay" {
    percent = 20
    sleep   = "2s"
    before  = false
  }

  behavior "test_error" {
    percent = 5
    inject  = true
    warmup  = 3
  }
}
