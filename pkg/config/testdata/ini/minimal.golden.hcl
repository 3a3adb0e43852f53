admin {
  listen = ""
}

log {
  level  = "info"
  format = "json"
}

route "default" {
  listen          = "0.0.0.0:8181"
  backend         = "0.0.0.0:8080"
  timeout         = "30s"
  connect_timeout = "30s"
  default         = true

  behavior "test_abort" {
    percent = 100
  }
}
