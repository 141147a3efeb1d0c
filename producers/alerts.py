"""Alerts to a Slack incoming webhook (httpx), deduplicated and rate-limited; no webhook = log only.

One outage must send one alert, not hundreds: callers alert only for a newly opened failure, and the notifier
sends at most one message per ``min_interval_s`` for the same (source, error class); what it holds back is counted
and mentioned in the next message. The webhook URL is a secret: it is never logged.
"""

from __future__ import annotations

import logging
import time

import httpx

from runtime.settings import AlertSettings

log = logging.getLogger(__name__)


class AlertNotifier:
    """Sends alert lines to Slack."""

    def __init__(self, settings: AlertSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self._last_sent: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}
        self._http = httpx.AsyncClient(timeout=10, transport=transport)
        self.sent = 0

    async def aclose(self) -> None:
        await self._http.aclose()

    async def alert(self, source: str, error_class: str, text: str) -> bool:
        """Send (or hold back) one alert; returns True when a message went out."""
        key = (source, error_class)
        now = time.monotonic()
        last = self._last_sent.get(key)
        if last is not None and now - last < self.settings.min_interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            log.info("alert held back (rate limit): %s", text)
            return False
        held = self._held.pop(key, 0)
        message = f":rotating_light: RaceLab ingest: {text}" + (f" (+{held} similar held back)" if held else "")
        self._last_sent[key] = now
        webhook = self.settings.slack_webhook_url
        if webhook is None or not webhook.get_secret_value():
            log.warning("ALERT %s", message)
            return False
        try:
            response = await self._http.post(webhook.get_secret_value(), json={"text": message})
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.error(  # noqa: TRY400 - the traceback would add nothing; the class name says it
                "could not deliver an alert to Slack (%s): %s", exc.__class__.__name__, message
            )
            return False
        self.sent += 1
        return True
