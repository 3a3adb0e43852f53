admin {
  token = env("A", "b", "c")
}
