"""Logging set-up shared by every command: one format, and a filter that masks secret values."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass

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
REPEAT_INTERVAL_S = 60.0


@dataclass
class _Seen:
    passed_at: float
    suppressed: int = 0
    last: logging.LogRecord | None = None


class RepeatSummaryFilter(logging.Filter):
    """Lets a warning or error through at most once per ``interval_s``; the repeats are counted and summarized.

    Records are alike when they come from the same logger, at the same level, with the same message template (a
    commit failing on 24 partitions, ten times a second, is one line a minute). The first one passes; the ones after
    it within the interval are held back and counted; once the interval is over, one summary line names the count
    and shows the last one. Summaries of lines that stopped repeating go out with the next record of any kind.
    """

    def __init__(self, handler: logging.Handler, interval_s: float = REPEAT_INTERVAL_S) -> None:
        super().__init__()
        self.handler = handler
        self.interval_s = interval_s
        self._seen: dict[tuple[str, int, str], _Seen] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "repeat_summary", False):
            return True
        now = record.created
        with self._lock:
            due = self._due(now)
            passes = True
            if record.levelno >= logging.WARNING:
                key = (record.name, record.levelno, str(record.msg))
                seen = self._seen.get(key)
                if seen is not None and now - seen.passed_at < self.interval_s:
                    seen.suppressed += 1
                    seen.last = record
                    passes = False
                else:
                    self._seen[key] = _Seen(now)
        for summary in due:
            self.handler.handle(summary)
        return passes

    def _due(self, now: float) -> list[logging.LogRecord]:
        """Summaries of the lines whose interval is over, and forget those (called with the lock held)."""
        out = []
        for key, seen in list(self._seen.items()):
            if now - seen.passed_at < self.interval_s:
                continue
            del self._seen[key]
            if seen.suppressed and seen.last is not None:
                out.append(self._summary(seen.last, seen.suppressed, now - seen.passed_at))
        return out

    @staticmethod
    def _summary(last: logging.LogRecord, count: int, span_s: float) -> logging.LogRecord:
        summary = logging.makeLogRecord(last.__dict__)
        summary.msg = f"{last.getMessage()} [and {count} more like it in the last {span_s:.0f}s]"
        summary.args = ()
        summary.exc_info = summary.exc_text = None
        summary.repeat_summary = True
        return summary


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
    """Put the repeat summary and the secret mask on every handler of the root logger; quiet the chatty libraries.

    Call it again whenever something replaces the root's handlers (a Faust worker does, at start).
    """
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RepeatSummaryFilter) for f in handler.filters):
            handler.addFilter(RepeatSummaryFilter(handler))
        if not any(isinstance(f, SecretMaskFilter) for f in handler.filters):
            handler.addFilter(SecretMaskFilter(secret_values(settings)))
    for noisy in ("aiokafka", "faust", "mode", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
