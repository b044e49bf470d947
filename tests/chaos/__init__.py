"""Chaos tests: every client's view equals the truth within a bound, whatever happens."""
