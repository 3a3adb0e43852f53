# A chaos experiment on the compose stack: Redis slow for 20 s, then
# memcached failing for 10 s, while a probe checks the demo app's endpoint
# (GET http://127.0.0.1:9000/, one Redis and one memcached round trip).
# Run it from the host while the stack is up:
#
#   vaurien experiment run experiment.hcl --admin 127.0.0.1:8080 --report report/
#
# The app has no fallback when memcached fails: expect the
# "no-errors-while-memcached-down" SLO to fail, and the run to exit 1.

experiment "cache-trouble" {
  seed = 42

  probe "app" {
    http {
      url    = "http://127.0.0.1:9000/"
      status = [200]
    }
    interval = "100ms"
  }

  steady_state {
    duration = "10s"
  }

  step "redis-slow" {
    duration = "20s"
    route "redis" {
      behavior "delay" {
        percent = 30
        sleep   = "200ms"
      }
    }
  }

  step "memcached-down" {
    duration = "10s"
    route "memcached" {
      behavior "error" {
        percent = 100
      }
    }
  }

  recovery = "10s"

  slo "fast-while-redis-slow" {
    probe  = "app"
    during = "redis-slow"
    p99    = "800ms"
  }
  slo "no-errors-while-memcached-down" {
    probe      = "app"
    during     = "memcached-down"
    error_rate = 0.01
  }
  slo "healthy" {
    probe      = "app"
    during     = "steady_state"
    error_rate = 0.01
    p99        = "100ms"
  }
  slo "recovers" {
    probe            = "app"
    recovered_within = "10s"
  }
}
