toxiproxy {
  listen = "127.0.0.1:8474"
}

route "a" {
  listen  = "127.0.0.1:8474"
  backend = "127.0.0.1:80"
}
