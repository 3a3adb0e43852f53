# Options left out take their declared defaults; sleep in plain seconds.
route "a" {
  listen   = "127.0.0.1:0"
  backend  = "127.0.0.1:80"
  protocol = "test_plain"

  behavior "test_delay" {
    percent = 50
    sleep   = 0.2
  }
  behavior "test_abort" {
    percent = 50
  }
}

route "b" {
  listen   = "127.0.0.1:0"
  backend  = "[::1]:6379"
  protocol = "test_proto"
  timeout  = null
}
