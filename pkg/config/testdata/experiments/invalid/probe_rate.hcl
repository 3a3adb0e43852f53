experiment "x" {
  probe "app" {
    tcp {
      address = "127.0.0.1:80"
    }
    interval    = "20ms"
    concurrency = 4
  }
  steady_state {
    duration = "1s"
  }
}
