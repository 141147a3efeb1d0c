"""Logging set-up shared by every command: one format, and a filter that masks secret values."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from pydantic import SecretStr

from racelab.settings import Settings

MASK = "**********"


class SecretMaskFilter(logging.Filter):
    """Replace any known secret value in a log message with a mask (a safety net; secrets are never logged)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        masked = message
        for secret in self.secrets:
            masked = masked.replace(secret, MASK)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def secret_values(settings: Settings) -> list[str]:
    """Every secret string in the settings (service keys, API key, webhook, database password)."""
    values: list[str] = []
    for secret in (
        settings.kra.service_key,
        settings.kspo.service_key,
        settings.api.ingestion_key,
        settings.alerts.slack_webhook_url,
    ):
        if isinstance(secret, SecretStr) and secret.get_secret_value():
            values.append(secret.get_secret_value())
    from urllib.parse import urlsplit

    password = urlsplit(settings.database.url.get_secret_value()).password
    if password:
        values.append(password)
    return values


def setup_logging(settings: Settings) -> None:
    """Configure the root logger once for a command."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(SecretMaskFilter(secret_values(settings)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for noisy in ("aiokafka", "faust", "mode", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
