"""Which datasets the simulated service key is approved for: data.go.kr approves a key per dataset.

A call to an endpoint the key is not approved for gets the refusal the API notes describe: the KRA APIs answer code
30 (``SERVICE_KEY_IS_NOT_REGISTERED_ERROR``) in the XML ``OpenAPI_ServiceResponse`` with HTTP 200, even when JSON
was asked for; the KSPO gateway answers HTTP 403 without a code. An endpoint whose daily quota the key has used up
answers code 22 (``LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR``) in the same XML envelope. Endpoints are
named by globs over ``SERVICE/OPERATION``, as the fault rules are (``API9_1/*``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from producers.simulator.envelope import gateway_error

KSPO_PREFIX = "B551014"


@dataclass(frozen=True)
class Refusal:
    """The answer to a call the key may not make."""

    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True)
class KeyApprovals:
    """The endpoints the key is not approved for, and those whose daily quota it has used up."""

    unapproved: tuple[str, ...] = ()
    quota_exhausted: tuple[str, ...] = ()

    def refusal(self, prefix: str, path: str) -> Refusal | None:
        """The refusal of a call to ``path`` under ``/prefix``, or None when the key may make it."""
        if _matches(self.unapproved, path):
            if prefix == KSPO_PREFIX:
                return Refusal(403, b"Forbidden", "text/plain")
            return Refusal(200, gateway_error("30"), "text/xml")
        if _matches(self.quota_exhausted, path):
            return Refusal(200, gateway_error("22"), "text/xml")
        return None


def _matches(patterns: Sequence[str], path: str) -> bool:
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)
