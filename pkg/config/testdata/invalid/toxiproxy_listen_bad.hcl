toxiproxy {
  listen = "localhost"
}
