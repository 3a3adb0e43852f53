admin {
  listen        = "127.0.0.1:8080"
  allowed_hosts = ["vaurien", "vaurien:8080"]
}
