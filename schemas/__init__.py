"""Contracts of RaceLab ingest: normalized record models, raw-message envelope, topic catalogue, errors."""
