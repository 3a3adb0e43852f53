experiment "r" {
  report = ""
  probe "app" {
    tcp {
      address = "127.0.0.1:1"
    }
  }
  step "s" {
    duration = "1s"
    route "cache" {
      behavior "test_delay" {
        percent = 100
      }
    }
  }
}
