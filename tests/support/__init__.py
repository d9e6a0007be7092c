"""Helpers shared by the test suites (not fixtures: things tests and benchmarks build on)."""
