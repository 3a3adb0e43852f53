route "a" {
  listen  = "127.0.0.1:8000"
  backend = "127.0.0.1:9000"
}

route "b" {
  listen  = ":9000"
  backend = "redis:6379"
}
