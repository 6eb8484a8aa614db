"""Readers for foreign weight files; none of them executes code found in a file."""
