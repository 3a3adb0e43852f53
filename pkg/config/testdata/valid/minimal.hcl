route "only" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:80"
}
