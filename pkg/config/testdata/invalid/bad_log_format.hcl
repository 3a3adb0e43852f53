log {
  format = "text"
}
