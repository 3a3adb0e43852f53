experiment "x" {
  probe "app" {
    tcp {
      address = "127.0.0.1:80"
    }
  }
  step "slow" {
    duration = "1s"
    route "cache" {
      behavior "test_delay" {
        percent = 10
      }
    }
  }
  slo "s" {
    probe  = "app"
    during = "slw"
    p99    = "1s"
  }
}
