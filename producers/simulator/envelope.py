"""The data.go.kr envelopes the simulator answers with, quirks included.

- one row comes back as ``item: {...}``, several as ``item: [...]``, none as ``items: ""``;
- without ``_type=json`` / ``resultType=json`` the body is the XML envelope;
- gateway errors (codes 12, 22, 23, 30 ...) are the XML ``OpenAPI_ServiceResponse`` with HTTP 200.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

import orjson

Row = dict[str, Any]

GATEWAY_MESSAGES = {
    "12": "NO_OPENAPI_SERVICE_ERROR",
    "20": "SERVICE_ACCESS_DENIED_ERROR",
    "22": "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR",
    "23": "LIMITED_NUMBER_OF_SERVICE_REQUESTS_PER_SECOND_EXCEEDS_ERROR",
    "30": "SERVICE_KEY_IS_NOT_REGISTERED_ERROR",
    "31": "DEADLINE_HAS_EXPIRED_ERROR",
    "99": "UNKNOWN_ERROR",
}


def page(rows: list[Row], page_no: int, num_rows: int) -> tuple[list[Row], int]:
    """The rows of one page and the total count."""
    start = (page_no - 1) * num_rows
    return rows[start : start + num_rows], len(rows)


def json_body(rows: list[Row], page_no: int, num_rows: int, total: int) -> bytes:
    """The normal JSON envelope around one page of rows."""
    items: object = "" if not rows else {"item": rows[0] if len(rows) == 1 else rows}
    doc = {
        "response": {
            "header": {"resultCode": "00", "resultMsg": "NORMAL SERVICE."},
            "body": {"items": items, "numOfRows": num_rows, "pageNo": page_no, "totalCount": total},
        }
    }
    return orjson.dumps(doc)


def xml_body(rows: list[Row], page_no: int, num_rows: int, total: int) -> bytes:
    """The normal XML envelope (what the APIs send when JSON was not asked for)."""
    items = "".join(
        "<item>" + "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in row.items()) + "</item>" for row in rows
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><response><header><resultCode>00</resultCode>'
        f"<resultMsg>NORMAL SERVICE.</resultMsg></header><body><items>{items}</items><numOfRows>{num_rows}"
        f"</numOfRows><pageNo>{page_no}</pageNo><totalCount>{total}</totalCount></body></response>"
    ).encode()


def gateway_error(code: str) -> bytes:
    """The gateway's XML error body (sent with HTTP 200, even when JSON was asked for)."""
    message = GATEWAY_MESSAGES.get(code, "UNKNOWN_ERROR")
    return (
        "<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg>"
        f"<returnAuthMsg>{message}</returnAuthMsg><returnReasonCode>{code}</returnReasonCode>"
        "</cmmMsgHeader></OpenAPI_ServiceResponse>"
    ).encode()


def json_error(code: str, message: str) -> bytes:
    """A JSON envelope with a non-00 result code and no body."""
    return orjson.dumps({"response": {"header": {"resultCode": code, "resultMsg": message}}})
