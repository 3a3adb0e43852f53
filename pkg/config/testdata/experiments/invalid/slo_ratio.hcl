experiment "x" {
  probe "app" {
    tcp {
      address = "127.0.0.1:80"
    }
  }
  steady_state {
    duration = "1s"
  }
  slo "s" {
    probe      = "app"
    error_rate = 5
  }
}
