experiment "x" {
  step "recovery" {
    duration = "1s"
    route "cache" {
      behavior "test_delay" {
        percent = 10
      }
    }
  }
}
