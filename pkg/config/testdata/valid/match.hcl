route "api" {
  listen   = "127.0.0.1:0"
  backend  = "127.0.0.1:80"
  protocol = "test_proto"

  behavior "test_error" {
    percent = 100
    match {
      method = ["POST", "PUT"]
      path   = "/api/*"
      header = { "X-Tenant" = "acme*" }
    }
  }
  behavior "test_abort" {
    percent = 0
    match {
      command = "GET"
    }
  }
  behavior "test_delay" {
    percent = 0
    match {
      command  = ["UPDATE"]
      sql      = "*orders*"
      database = "shop"
      user     = ["app", "batch"]
    }
  }
}
