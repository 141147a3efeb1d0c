"""RaceLab ingest: the thin shell (settings, CLI, logging) around producers, processors and sinks."""

__version__ = "0.1.0"
