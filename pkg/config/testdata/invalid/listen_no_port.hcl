route "a" {
  listen  = "localhost"
  backend = "127.0.0.1:80"
}
