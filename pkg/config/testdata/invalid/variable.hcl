route "a" {
  listen  = local.listen
  backend = "127.0.0.1:80"
}
