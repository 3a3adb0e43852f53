log {
  level = "warning"
}
