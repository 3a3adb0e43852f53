experiment "x" {
  steady_state {
    duration = "1s"
  }
  slo "s" {
    probe      = "app"
    error_rate = 0.1
  }
}
