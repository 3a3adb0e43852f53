# A route in front of vaurien's built-in demo HTTP backend: half of the
# connections get their answer upper-cased by the custom behavior, a fifth
# are delayed by a built-in one, the rest pass untouched.

log {
  level  = "info"
  format = "console"
}

route "shout" {
  listen   = "127.0.0.1:8000"
  backend  = "demo:http"
  protocol = "tcp"

  behavior "uppercase" {
    percent   = 50
    direction = "to_client"
  }

  behavior "delay" {
    percent = 20
    sleep   = "300ms"
  }
}
