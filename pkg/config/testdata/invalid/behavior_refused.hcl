route "a" {
  listen  = "127.0.0.1:8000"
  backend = "127.0.0.1:80"

  behavior "test_lists" {
    percent = 10
    label   = "refused"
  }
}
