seed = -1
