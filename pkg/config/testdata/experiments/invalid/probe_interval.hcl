experiment "x" {
  probe "app" {
    tcp {
      address = "127.0.0.1:80"
    }
    interval = "5ms"
  }
  steady_state {
    duration = "1s"
  }
}
