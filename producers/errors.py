"""Errors of the upstream APIs (KRA and KSPO on data.go.kr), classified by code and type, never by message text.

::

    PipelineError (schemas.errors)
    └── UpstreamError                 a call to a source API failed
        ├── UpstreamTimeout           retriable: connect or read timeout
        ├── UpstreamUnavailable       retriable: connection refused/reset, HTTP 5xx, codes 01 02 04 05 99 500
        ├── MalformedResponse         retriable: body is not the documented JSON/XML envelope (truncated, garbage)
        ├── RateLimited               retriable: code 23 (per-second limit) or HTTP 429; back off
        ├── QuotaExceeded             fatal, alert: code 22 (daily quota); no call until the next KST day
        ├── AccessDenied              fatal, alert: codes 20 21 29 30 31 32 33, HTTP 401/403 (key or approval)
        └── InvalidRequest            fatal: codes 10 11 12 301 334 336 340 601, other HTTP 4xx (our bug)

Every instance carries ``source``, ``endpoint``, ``code`` (the API's result code, if any), ``api_message`` (the
API's ``resultMsg`` / ``returnAuthMsg``, if any), ``http_status`` and ``attempts``. Messages name the endpoint, never
the URL with its service key.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.errors import PipelineError


class UpstreamError(PipelineError):
    """A call to a source API failed."""

    alert: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        source: str,
        endpoint: str,
        code: str | None = None,
        http_status: int | None = None,
        attempts: int = 1,
        api_message: str = "",
    ) -> None:
        super().__init__(message)
        self.source = source
        self.endpoint = endpoint
        self.code = code
        self.api_message = api_message
        self.http_status = http_status
        self.attempts = attempts

    def __str__(self) -> str:
        code = f" code={self.code}" if self.code else ""
        status = f" http={self.http_status}" if self.http_status else ""
        return f"{self.source} {self.endpoint}:{code}{status} {self.args[0]} (attempts={self.attempts})"


class UpstreamTimeout(UpstreamError):
    """The API did not connect or answer in time."""

    retriable = True


class UpstreamUnavailable(UpstreamError):
    """The API is down or failing on its side."""

    retriable = True


class MalformedResponse(UpstreamError):
    """The body is not a parsable API envelope (truncated, not JSON/XML, wrong shape)."""

    retriable = True


class RateLimited(UpstreamError):
    """Too many calls per second (code 23, HTTP 429)."""

    retriable = True


class QuotaExceeded(UpstreamError):
    """The daily quota of the key is used up (code 22): stop calling until tomorrow (KST)."""

    alert = True


class AccessDenied(UpstreamError):
    """The key is unknown, expired, blocked, or not approved for this API."""

    alert = True


class InvalidRequest(UpstreamError):
    """The API rejected our request (parameters, operation name, page size)."""

    alert = True


# data.go.kr resultCode / returnReasonCode -> class (success and "no data": schemas.envelope).
CODE_CLASSES: dict[str, type[UpstreamError]] = {
    **dict.fromkeys(["01", "1", "02", "2", "04", "4", "05", "5", "99", "500"], UpstreamUnavailable),
    **dict.fromkeys(["10", "11", "12", "301", "334", "336", "340", "601"], InvalidRequest),
    **dict.fromkeys(["20", "21", "29", "30", "31", "32", "33"], AccessDenied),
    "22": QuotaExceeded,
    "23": RateLimited,
}


def class_for_code(code: str) -> type[UpstreamError]:
    """The error class of an API result code; unknown codes are treated as temporary failures."""
    return CODE_CLASSES.get(code.strip(), UpstreamUnavailable)


def class_for_status(status: int) -> type[UpstreamError]:
    """The error class of a non-200 HTTP status."""
    if status == 429:
        return RateLimited
    if status in (401, 403):
        return AccessDenied
    if status >= 500:
        return UpstreamUnavailable
    return InvalidRequest
