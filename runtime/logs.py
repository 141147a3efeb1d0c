"""Logging set-up shared by every command: one format, and a filter that masks secret values."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from pydantic import SecretStr

from runtime.settings import Settings

MASK = "**********"


# Library loggers that log an expected, retried condition with a full traceback: the record keeps one line.
ONE_LINE_LOGGERS = frozenset({"asyncpg.pool"})  # "Failed to restore the pool connection floor" while the DB is down


class SecretMaskFilter(logging.Filter):
    """Replace any known secret value in a log message and its traceback with a mask (a safety net; secrets are
    never logged). Also shortens the tracebacks of :data:`ONE_LINE_LOGGERS` to the exception's one line."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.name in ONE_LINE_LOGGERS:
            error = record.exc_info[1]
            record.msg, record.args = f"{record.getMessage()} ({type(error).__name__}: {error})", ()
            record.exc_info, record.exc_text = None, None
        if not self.secrets:
            return True
        message = record.getMessage()
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.mask(_FORMATTER.formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True


_FORMATTER = logging.Formatter()


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
    from runtime.settings import url_password

    password = url_password(settings.database.url.get_secret_value())
    if password:
        values.append(password)
    return values


def setup_logging(settings: Settings) -> None:
    """Configure the root logger once for a command."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    guard_handlers(settings)


def guard_handlers(settings: Settings) -> None:
    """Put the secret mask on every handler of the root logger and quiet the chatty libraries.

    Call it again whenever something replaces the root's handlers (a Faust worker does, at start).
    """
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, SecretMaskFilter) for f in handler.filters):
            handler.addFilter(SecretMaskFilter(secret_values(settings)))
    for noisy in ("aiokafka", "faust", "mode", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
