"""KRA (Korea Racing Authority, horse racing) on data.go.kr: ``_type=json``.

Calls are built in :mod:`producers.calls`.
"""

from __future__ import annotations

from typing import ClassVar

from producers.client import DataGoKrClient


class KraClient(DataGoKrClient):
    """Client of the KRA APIs (``serviceKey`` + ``_type=json``)."""

    source: ClassVar[str] = "kra"
    format_params: ClassVar[dict[str, str]] = {"_type": "json"}
