route "a" {
  listen   = "127.0.0.1:8000"
  backend  = "127.0.0.1:80"
  protocol = "test_proto"

  protocol_options {
    buffer = 13
  }
}
