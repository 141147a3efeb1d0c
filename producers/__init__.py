"""Producers: see README.md for the architecture."""
