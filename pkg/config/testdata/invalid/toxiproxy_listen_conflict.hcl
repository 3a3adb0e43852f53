admin {
  listen = "127.0.0.1:8474"
}

toxiproxy {
  listen = "0.0.0.0:8474"
}
