"""The signup service: proof of attendance, evolved in three phases."""
