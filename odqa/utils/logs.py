"""Logging of the command-line tools, configured in one place (library code only creates loggers).

Commands log to stderr, so stdout stays for results (JSON, predictions summaries) that scripts parse.
Long jobs (training) stamp each line with the time; the chatty libraries underneath (bm25s sets its own
logger to DEBUG on import, transformers, datasets, httpx) are held at WARNING.
"""
from __future__ import annotations

import logging
import sys

NOISY_LIBRARIES = ("bm25s", "transformers", "datasets", "httpx", "urllib3", "elastic_transport")


def configure_cli_logging(level: int = logging.INFO, timestamps: bool = False) -> None:
    """Log ``odqa.*`` at ``level`` to stderr; hold third-party loggers at WARNING."""
    fmt = ("%(asctime)s " if timestamps else "") + "%(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr)
    for name in NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
