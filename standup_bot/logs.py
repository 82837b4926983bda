"""Logging to a file under DATA_DIR (mode 600), optionally echoed to stderr, never with secrets."""

from __future__ import annotations

import logging
import logging.handlers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .errors import StoreError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactSecrets(logging.Filter):
    """Replace every secret value in a log record's final message with [redacted]."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message and traceback without secrets; always keep the record."""
        if self.secrets:
            record.msg, record.args = self._redact(record.getMessage()), None
            # A traceback repeats the exception's message (which may hold a secret). Formatters
            # reuse a record's exc_text once set, so format and redact it here.
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self._redact(record.exc_text)
            if record.stack_info:
                record.stack_info = self._redact(record.stack_info)
        return True

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text


def setup_logging(
    path: Path, secrets: Sequence[str], *, verbose: bool = False, stream: TextIO | None = None,
    echo: bool | None = None,
) -> None:
    """Send our logs (and slack_sdk's warnings) to `path`, and to `stream` when verbose or echo."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        # WatchedFileHandler reopens the file after logrotate moves it.
        handlers: list[logging.Handler] = [logging.handlers.WatchedFileHandler(path, encoding="utf-8")]
    except OSError as exc:
        raise StoreError(f"cannot write the log file {path}: {exc.strerror}") from None
    if verbose or echo:
        handlers.append(logging.StreamHandler(stream))
    redact = RedactSecrets(secrets)
    formatter = logging.Formatter(FORMAT)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redact)
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # slack_sdk logs request bodies at DEBUG; keep it at INFO even when verbose.
    logging.getLogger("slack_sdk").setLevel(logging.INFO)
    logging.getLogger("slack_bolt").setLevel(logging.INFO)
