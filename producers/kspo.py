"""KSPO (cycle and boat racing) on the data.go.kr gateway: ``resultType=json`` (required); see :mod:`producers.calls`.

KSPO identifies a race day by year, round (``week_tcnt``/``tms``: the n-th race week of the year) and day of the
round (``day_tcnt``/``day_ord``); which date that is comes from the calendar (:mod:`producers.calendar`).
``race_no``, ``week_tcnt`` and ``tms`` must be two-digit strings: ``"9"`` silently returns no rows where ``"09"``
returns them (the call builders pad them).
"""

from __future__ import annotations

from typing import ClassVar

from producers.client import DataGoKrClient


class KspoClient(DataGoKrClient):
    """Client of the KSPO gateway APIs (``serviceKey`` + ``resultType=json``)."""

    source: ClassVar[str] = "kspo"
    format_params: ClassVar[dict[str, str]] = {"resultType": "json"}
