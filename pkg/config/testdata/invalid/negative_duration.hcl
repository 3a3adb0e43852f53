drain = "-1s"
