"""Sinks: TimescaleDB schema migrations, the batch writer, and query functions."""
