"""Logs of every tickfan process: ``--log-level`` and ``--log-format text|json``, on every command.

The stdlib ``logging`` with one handler on stderr; this module only formats. ``json`` writes one object per
line with stable field names (README, Operations: "Logs and metrics"):

- always ``ts`` (UTC, ISO 8601 with microseconds), ``level`` (``debug``...``critical``), ``logger``, ``event``
  (the message), ``cmd`` (the tickfan command), ``pid``;
- where the code knows them (``log.info(..., extra={"symbol": ...})``): ``symbol``, ``order_id``, ``user_id``,
  ``session``, ``seq``, ``stream``, ``reason``, ``peer``;
- ``exc`` with the traceback of a logged exception.

Secrets never reach a line, in either format: bearer tokens, JWTs, ``token=``/``ticket=``/``secret=``/
``password=`` values and the password of a URL are masked in the message and the traceback (``redact``).

The choice reaches the processes a command starts (the demo's workers, simulator, market maker and execution
worker): ``configure`` exports it as ``TICKFAN_LOG_LEVEL`` / ``TICKFAN_LOG_FORMAT``, which every command reads
as its option's variable (``tickfan.config``). uvicorn's own loggers get the same format.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import re
import sys
import traceback
from typing import Any

import orjson

LEVELS = ("debug", "info", "warning", "error", "critical")
FORMATS = ("text", "json")
FIELDS = ("symbol", "order_id", "user_id", "session", "seq", "stream", "reason", "peer")
# commands that say what they do at info by default (servers of the trading path); the others warn only
INFO_BY_DEFAULT = frozenset({"api", "execute"})
MASK = "[redacted]"
_SECRETS = (
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + MASK),
    # a JWT anywhere (three base64url parts, the first one a JSON header: eyJ...)
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), MASK),
    (re.compile(r"(?i)\b((?:access_|refresh_|ws_)?(?:token|ticket|secret|password|passphrase|api_key)"
                r"[\"']?\s*[=:]\s*[\"']?)[^\s&\"',;)}]+"), r"\1" + MASK),
    (re.compile(r"(://[^:/@\s]*:)[^@\s]*@"), r"\1" + MASK + "@"),
)


def redact(text: str) -> str:
    """``text`` with every credential it carries masked."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(name)s %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, the fields above."""

    def __init__(self, command: str = "") -> None:
        super().__init__()
        self.command = command

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="microseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact(record.getMessage()),
            "cmd": self.command,
            "pid": record.process,
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value if isinstance(value, int | float | bool) else redact(str(value))
        if record.exc_info:
            line["exc"] = redact("".join(traceback.format_exception(*record.exc_info)))
        elif record.exc_text:
            line["exc"] = redact(record.exc_text)
        return orjson.dumps(line, default=str).decode()


def add_log_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("logs", "on stderr; the processes this command starts log the same way")
    group.add_argument("--log-level", type=str.lower, choices=LEVELS, default=None,
                       help="the least severe level logged (default: info for api and execute, warning for "
                            "the others)")
    group.add_argument("--log-format", type=str.lower, choices=FORMATS, default="text",
                       help="text lines, or json: one object a line with stable fields (ts, level, logger, event, "
                            "and where known symbol, order_id, user_id, session, seq) (default %(default)s)")


def formatter(log_format: str, command: str = "") -> logging.Formatter:
    return JsonFormatter(command) if log_format == "json" else TextFormatter()


def configure(command: str, log_level: str | None, log_format: str = "text", *,
              stream: Any = None, export: bool = True) -> None:
    """Set up the process's logging (replacing any handler set before) and pass the choice on to children."""
    level = log_level or ("info" if command in INFO_BY_DEFAULT else "warning")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format, command))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # Python's warnings as log lines too
    if log_format == "json":  # an uncaught exception is one more JSON line, not a bare traceback
        sys.excepthook = _log_uncaught
    _uvicorn_alike(log_format, command)
    if export:
        os.environ["TICKFAN_LOG_FORMAT"] = log_format
        if log_level is not None:
            os.environ["TICKFAN_LOG_LEVEL"] = log_level


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("tickfan").critical("uncaught exception: %s", exc, exc_info=(kind, exc, tb))


def _uvicorn_alike(log_format: str, command: str) -> None:
    """uvicorn configures its loggers from ``uvicorn.config.LOGGING_CONFIG`` whenever a server is made: give its
    handlers our formatter (the only process-wide setting it offers)."""
    try:
        from uvicorn.config import LOGGING_CONFIG
    except ImportError:  # a client install: no server here
        return
    made = {"()": lambda: formatter(log_format, command)}
    LOGGING_CONFIG["formatters"] = {"default": dict(made), "access": dict(made)}
