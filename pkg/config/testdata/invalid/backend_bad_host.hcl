route "a" {
  listen  = "127.0.0.1:8000"
  backend = "../etc:1"
}
