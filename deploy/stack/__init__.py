"""The local stack without Docker: Tansu broker, private PostgreSQL 15 cluster with TimescaleDB; Prometheus tools."""
