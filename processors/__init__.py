"""Processors: see README.md for the architecture."""
