experiment "x" {
  step "s" {
    duration = "1s"
    route "cahce" {
      behavior "test_delay" {
        percent = 10
      }
    }
  }
}
