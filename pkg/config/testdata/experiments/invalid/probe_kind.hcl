experiment "x" {
  probe "app" {
    htp {
      url = "http://127.0.0.1/"
    }
  }
  steady_state {
    duration = "1s"
  }
}
