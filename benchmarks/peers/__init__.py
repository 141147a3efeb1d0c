"""Peer pipelines for ``benchmarks.versus_peers``: what a user would write with public libraries alone.

These programs import only their own libraries (quixstreams, aiokafka, asyncpg, orjson), never RaceLab's modules, so
they run in a virtual environment of their own (``.racelab/peers-venv``), started by the benchmark.
"""
