route "a" {
  listen  = "127.0.0.1:8000"
  backend = "127.0.0.1:80"
  tls {
    generate = true
    cert     = "cert.pem"
    key      = "key.pem"
  }
}
