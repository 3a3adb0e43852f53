route "web" {
  listen  = "127.0.0.1:8443"
  backend = "api.example.com:443"

  tls {
    generate = true
    names    = ["localhost", "vaurien"]
    ca_out   = "/shared/vaurien-ca.pem"
  }

  backend_tls {
    ca   = "/etc/ssl/backend-ca.pem"
    cert = "client.pem"
    key  = "client.key"
  }
}
