"""RaceLab ingest: the shell (CLI, control API, demo, supervisor) over the stages and the runtime floor."""

from schemas.dlq import PIPELINE_VERSION

__version__ = PIPELINE_VERSION
