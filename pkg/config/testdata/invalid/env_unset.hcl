admin {
  token = env("VAURIEN_TEST_SURELY_UNSET")
}
