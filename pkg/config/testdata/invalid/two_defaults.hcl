route "a" {
  listen  = "127.0.0.1:8000"
  backend = "127.0.0.1:80"
  default = true
}

route "b" {
  listen  = "127.0.0.1:8001"
  backend = "127.0.0.1:80"
  default = true
}
