experiment "nothing" {
  steady_state {
    duration = "0s"
  }
}
