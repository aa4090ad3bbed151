"""Logging: human lines or one JSON object per line on stderr, every message scrubbed of secrets."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from .redact import scrub

# Context keys a log call may pass in ``extra`` and that the JSON format carries as fields.
CONTEXT_KEYS = ("event", "batch", "platform", "prompt_id", "error_class")


class ScrubFilter(logging.Filter):
    def __init__(self, secrets: Callable[[], Sequence[str]]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info), self.secrets())
            record.exc_info = None
        record.msg = scrub(msg, self.secrets())
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        obj = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                obj[key] = str(value)
        obj.setdefault("event", record.name.rsplit(".", 1)[-1])
        if record.exc_text:
            obj["exception"] = record.exc_text
        return json.dumps(obj, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname.lower()}: {record.getMessage()}"
        if record.exc_text:
            text += "\n" + record.exc_text
        return text


def setup_logging(*, level: int, fmt: str = "text", secrets: Callable[[], Sequence[str]] = list) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ScrubFilter(secrets))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries' debug chatter (HTTP request lines) only with --debug.
    for noisy in ("httpx", "httpcore", "httpx2", "openai", "anthropic", "google_genai", "psycopg", "aiohttp"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
