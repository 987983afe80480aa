"""`make bench`: load scenarios against the stack `make run` starts."""
