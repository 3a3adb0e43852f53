# One pass reports every problem.
log {
  level = "loud"
}

route "a" {
  listen  = "nowhere"
  backend = "127.0.0.1:80"

  behavior "test_delay" {
    percent = 10
    sleep   = true
  }
  behavior "nope" {
    percent = 10
  }
}

route "a" {
  listen          = "127.0.0.1:8001"
  backend         = "127.0.0.1:80"
  max_connections = -1
}
