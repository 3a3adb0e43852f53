route "a" {
  listen  = "127.0.0.1:99999"
  backend = "127.0.0.1:80"
}
