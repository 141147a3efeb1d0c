"""The read-only status page at ``/`` (setting ``api.page_enabled``): one HTML file, its CSS and script inline.

The page is a shell without data: it asks for the ingestion key, keeps it in the tab's ``sessionStorage`` only, and
fetches everything it shows from keyed routes (``/api/ingestion/status``, ``/api/ingestion/races`` and each race's
``odds.svg``), writing every value with ``textContent``. Nothing is loaded from elsewhere. The answer carries a
Content-Security-Policy that allows exactly its own script (by its SHA-256), requests to this origin only, and
inline styles (the chart's SVG is styled inline); no framing, no forms sent anywhere, no referrer.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@functools.cache
def page_html() -> str:
    """The page's HTML (from the package)."""
    return resources.files("racelab.api").joinpath("page.html").read_text(encoding="utf-8")


def script_hashes(html: str) -> list[str]:
    """CSP sources (``'sha256-...'``) of the page's inline scripts."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii") + "'"
        for body in SCRIPT.findall(html)
    ]


@functools.cache
def page_headers() -> dict[str, str]:
    """Security headers of the page."""
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(script_hashes(page_html())),
            "style-src 'unsafe-inline'",
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def page_router() -> APIRouter:
    """``GET /``: the page (left out of the OpenAPI document: it is not part of the API)."""
    router = APIRouter()

    @router.get("/", include_in_schema=False, response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(page_html(), headers=page_headers())

    return router
