experiment "x" {
  step "s" {
    duration = "1s"
    route "cache" {
      behavior "test_delay" {
        percent = 80
      }
      behavior "test_error" {
        percent = 30
      }
    }
  }
}
