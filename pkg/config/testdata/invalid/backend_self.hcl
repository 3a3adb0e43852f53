route "cache" {
  listen  = "0.0.0.0:6380"
  backend = "localhost:6380"
}
