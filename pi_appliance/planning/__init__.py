"""Planning a completion: the pure plan, run in worker processes under a deadline."""
