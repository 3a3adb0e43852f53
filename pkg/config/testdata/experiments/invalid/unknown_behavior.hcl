experiment "x" {
  step "s" {
    duration = "1s"
    route "cache" {
      behavior "test_dealy" {
        percent = 10
      }
    }
  }
}
