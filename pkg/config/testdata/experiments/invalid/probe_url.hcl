experiment "x" {
  probe "app" {
    http {
      status = [200]
    }
  }
  steady_state {
    duration = "1s"
  }
}
