"""Just enough of the data.go.kr envelope for a client: result code, paging counters, number of items.

Handles the shapes in the API notes: JSON ``response.header/body``; the gateway error
``OpenAPI_ServiceResponse/cmmMsgHeader`` as XML (sent with HTTP 200 even when JSON was asked) or as JSON; the
normal XML envelope; ``items: ""``, a missing ``items``, and ``item`` as one object instead of a list; numbers as
strings. Records themselves are not parsed here: that is the processors' job.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import orjson


class EnvelopeError(ValueError):
    """The body is not a recognizable API envelope."""


@dataclass(frozen=True)
class PageInfo:
    """What the envelope of one page says."""

    code: str
    message: str
    total_count: int | None
    page_no: int | None
    num_rows: int | None
    item_count: int
    is_xml: bool


def _int(value: object) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError as exc:
        raise EnvelopeError(f"paging field is not a number: {str(value)[:20]!r}") from exc


def _count_items(items: object) -> int:
    if items in (None, "", {}):
        return 0
    if not isinstance(items, dict):
        raise EnvelopeError("items is neither an object nor empty")
    item = items.get("item")
    if item is None or item == "":
        return 0
    if isinstance(item, list):
        return len(item)
    if isinstance(item, dict):
        return 1
    raise EnvelopeError("items.item is neither a list nor an object")


def _from_json(doc: Any) -> PageInfo:
    if not isinstance(doc, dict):
        raise EnvelopeError("JSON body is not an object")
    gateway = doc.get("OpenAPI_ServiceResponse")
    if isinstance(gateway, dict):
        header = gateway.get("cmmMsgHeader") or {}
        return PageInfo(
            str(header.get("returnReasonCode", "99")).strip(),
            str(header.get("returnAuthMsg", "")),
            None,
            None,
            None,
            0,
            False,
        )
    response = doc.get("response")
    if not isinstance(response, dict) or not isinstance(response.get("header"), dict):
        raise EnvelopeError("JSON body has no response.header")
    header = response["header"]
    body = response.get("body") or {}
    if not isinstance(body, dict):
        raise EnvelopeError("response.body is not an object")
    return PageInfo(
        code=str(header.get("resultCode", "")).strip(),
        message=str(header.get("resultMsg", "")),
        total_count=_int(body.get("totalCount")),
        page_no=_int(body.get("pageNo")),
        num_rows=_int(body.get("numOfRows")),
        item_count=_count_items(body.get("items")),
        is_xml=False,
    )


def _from_xml(text: bytes) -> PageInfo:
    try:
        root = ET.fromstring(text)  # noqa: S314 - small bodies from the configured API, no entity expansion used
    except ET.ParseError as exc:
        raise EnvelopeError(f"XML body does not parse ({exc})") from exc
    if root.tag == "OpenAPI_ServiceResponse":
        return PageInfo(
            (root.findtext("cmmMsgHeader/returnReasonCode") or "99").strip(),
            root.findtext("cmmMsgHeader/returnAuthMsg") or "",
            None,
            None,
            None,
            0,
            True,
        )
    if root.tag != "response" or root.find("header") is None:
        raise EnvelopeError(f"XML root <{root.tag}> is not an API envelope")
    return PageInfo(
        code=(root.findtext("header/resultCode") or "").strip(),
        message=root.findtext("header/resultMsg") or "",
        total_count=_int(root.findtext("body/totalCount")),
        page_no=_int(root.findtext("body/pageNo")),
        num_rows=_int(root.findtext("body/numOfRows")),
        item_count=len(root.findall("body/items/item")),
        is_xml=True,
    )


def inspect_page(body: bytes) -> PageInfo:
    """Read the envelope of one response body; raises :class:`EnvelopeError` when it is not one."""
    stripped = body.lstrip()
    if not stripped:
        raise EnvelopeError("empty body")
    if stripped.startswith(b"<"):
        return _from_xml(stripped)
    try:
        doc = orjson.loads(stripped)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"JSON body does not parse ({exc.__class__.__name__} at {exc.pos})") from exc
    return _from_json(doc)
