"""Logging as operators read it: text lines on a terminal, JSON lines for a log pipeline."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # apscheduler logs every job it adds and every run at INFO: noise between the bot's lines.
    logging.getLogger("apscheduler").setLevel(max(root.level, logging.WARNING))
    # The MCP SDK's HTTP client logs each request's URL at INFO: a team server's URL may
    # carry a token in its query string (docs/investigation.md).
    logging.getLogger("httpx2").setLevel(max(root.level, logging.WARNING))
