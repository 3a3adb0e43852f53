route "a" {
  backend = "127.0.0.1:80"
}
