admin {
  allowed_hosts = [{name = "vaurien"}]
}
