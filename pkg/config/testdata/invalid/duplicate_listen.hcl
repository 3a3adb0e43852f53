route "a" {
  listen  = "0.0.0.0:8000"
  backend = "127.0.0.1:80"
}

route "b" {
  listen  = "127.0.0.1:8000"
  backend = "127.0.0.1:81"
}
