route "api" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:80"
  behavior "test_abort" {
    percent = 10
    match {
      path = "api/*"
    }
  }
}
