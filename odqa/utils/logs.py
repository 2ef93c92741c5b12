"""Logging of the command-line tools, configured in one place (library code only creates loggers).

Commands log to stderr, so stdout stays for results (JSON, predictions summaries) that scripts parse.
Long jobs (training) stamp each line with the time; the chatty libraries underneath (bm25s sets its own
logger to DEBUG on import, transformers, datasets, httpx) are held at WARNING, and what they do log is
one line each: a client library that retries a dead server logs a full urllib3 traceback per retry,
which buries odqa's own one-line error (it says what failed and what to do). odqa's own records keep
their tracebacks.
"""
from __future__ import annotations

import logging
import sys

NOISY_LIBRARIES = ("bm25s", "transformers", "datasets", "httpx", "urllib3", "elastic_transport")
# retries odqa reports itself once they are exhausted ("cannot reach Elasticsearch ...")
RETRY_LOGGERS = ("elastic_transport.transport", "elastic_transport.node_pool")


class OneLineForeignFormatter(logging.Formatter):
    """Records of loggers outside ``odqa`` on one line: the exception's type and message, no traceback."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "odqa" or record.name.startswith("odqa.") or not (record.exc_info or record.stack_info):
            return super().format(record)
        exc = record.exc_info[1] if record.exc_info else None
        flat = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None, "stack_info": None})
        line = super().format(flat)
        if exc is not None:
            line += f" ({type(exc).__name__}: {' '.join(str(exc).split())})"
        return line


def configure_cli_logging(level: int = logging.INFO, timestamps: bool = False) -> None:
    """Log ``odqa.*`` at ``level`` to stderr; hold third-party loggers at WARNING, one line per record."""
    fmt = ("%(asctime)s " if timestamps else "") + "%(levelname)s %(name)s: %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineForeignFormatter(fmt))
    logging.basicConfig(level=level, handlers=[handler])
    for name in NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in RETRY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
