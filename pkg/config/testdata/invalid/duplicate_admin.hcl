admin {
  listen = "127.0.0.1:8080"
}

admin {
  listen = "127.0.0.1:8081"
}
