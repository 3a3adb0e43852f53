experiment "cache-slow" {
  seed = 7

  probe "app" {
    http {
      url    = "http://127.0.0.1:9000/"
      status = [200]
    }
    interval = "100ms"
  }

  probe "cache" {
    redis {
      address = "127.0.0.1:6380"
    }
    interval    = "50ms"
    concurrency = 2
  }

  steady_state {
    duration = "3s"
  }

  step "slow" {
    duration = "5s"
    route "cache" {
      behavior "test_delay" {
        percent = 100
        sleep   = "200ms"
      }
    }
  }

  step "down" {
    duration = 2
    route "cache" {
      behavior "test_error" {
        percent = 30
      }
    }
    route "web" {
      behavior "test_abort" {
        percent = 10
      }
    }
  }

  recovery = "5s"

  slo "fast-while-slow" {
    probe  = "app"
    during = "slow"
    p99    = "100ms"
  }
  slo "no-errors" {
    probe      = "app"
    during     = "steady_state"
    error_rate = 0.01
    p50        = 0.05
  }
  slo "back" {
    probe            = "cache"
    recovered_within = "2s"
  }

  report = "reports/cache-slow"
}
