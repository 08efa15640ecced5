"""Benchmarks: scripts that print figures and ratios (never asserted in tests)."""
