experiment "x" {
  step "s" {
    duration = "0s"
    route "cache" {
      behavior "test_delay" {
        percent = 10
      }
    }
  }
}
