"""Who may call the server, and one log line per request that says who did what.

API keys come from an environment variable (never from the command line, where ``ps`` shows them):
several keys separated by commas or whitespace, one per client, so one client can be revoked without
touching the others. A request carries its key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``;
it is compared with every key in constant time (``hmac.compare_digest``), and only a short hash of it
(the *key id*) is ever logged or counted.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from odqa.errors import ConfigError

DEFAULT_KEYS_ENV = "ODQA_API_KEYS"
OPEN_PATHS = frozenset({"/", "/health"})  # GET only: a load balancer and the page's first load need no key
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
access_logger = logging.getLogger("odqa.serve.access")


def key_id(key: str) -> str:
    """A short, stable, non-reversible name for a key (8 hex digits of its sha256): safe to log."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


def read_api_keys(env_name: str | None, environ: Mapping[str, str] | None = None) -> list[str]:
    """The keys in ``$env_name`` (comma- or whitespace-separated); [] when ``env_name`` is None.

    An empty or unset variable that was asked for is an error: a server that silently ran open because a
    deployment forgot to set its keys is the accident this guards against."""
    if not env_name:
        return []
    environ = os.environ if environ is None else environ
    raw = environ.get(env_name)
    if raw is None or not raw.strip():
        raise ConfigError(f"--api_key_env {env_name}: the environment variable {env_name} is not set or empty; "
                          f"set it to one or more keys separated by commas (e.g. export {env_name}=\"$(openssl "
                          "rand -hex 24)\").")
    keys = [k for k in re.split(r"[,\s]+", raw) if k]
    short = [key_id(k) for k in keys if len(k) < 16]
    if short:
        raise ConfigError(f"${env_name}: key(s) {', '.join(short)} (ids) are shorter than 16 characters; use long "
                          "random keys (openssl rand -hex 24).")
    return keys


def presented_key(headers: Mapping[str, str]) -> Optional[str]:
    """The key a request carries (``Authorization: Bearer ...`` or ``X-API-Key``), or None."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return headers.get("x-api-key", "").strip() or None


def match_key(presented: Optional[str], keys: list[str]) -> Optional[str]:
    """The key id of ``presented`` if it is one of ``keys``, else None; every key is compared, in constant time."""
    if not presented:
        return None
    found = None
    given = presented.encode("utf-8")
    for key in keys:
        if hmac.compare_digest(given, key.encode("utf-8")):
            found = key
    return key_id(found) if found is not None else None


def request_id(headers: Mapping[str, str]) -> str:
    """The client's ``X-Request-ID`` when it is a sane token, else a new one (a log line must stay one line)."""
    given = headers.get("x-request-id", "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


@dataclass
class AccessRecord:
    """What one request's log line says; the endpoint fills in the questions and the batch."""

    request_id: str
    method: str
    route: str
    started: float = field(default_factory=time.perf_counter)
    status: int = 0
    key_id: Optional[str] = None
    questions: list[str] = field(default_factory=list)
    top_k: Optional[int] = None
    batch_id: Optional[int] = None
    no_answer: int = 0

    def fields(self, log_questions: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "request_id": self.request_id,
            "method": self.method, "route": self.route, "status": self.status,
            "latency_ms": round(1000 * (time.perf_counter() - self.started), 1),
            "questions": len(self.questions), "top_k": self.top_k, "batch_id": self.batch_id, "key_id": self.key_id}
        if self.no_answer:
            out["no_answer"] = self.no_answer
        if log_questions and self.questions:
            out["question_text"] = self.questions
        return out


def access_line(record: AccessRecord, log_format: str = "text", log_questions: bool = False) -> str:
    """One line: JSON (``log_format="json"``) or ``key=value`` text; question texts only when asked."""
    fields = record.fields(log_questions)
    if log_format == "json":
        return json.dumps(fields, ensure_ascii=False)
    head = f'{fields.pop("method")} {fields.pop("route")} {fields.pop("status")} {fields.pop("latency_ms")}ms'
    fields.pop("time")  # the log formatter stamps the time
    rest = " ".join(f"{k}={json.dumps(v, ensure_ascii=False) if isinstance(v, (list, str)) else v}"
                    for k, v in fields.items() if v is not None)
    return f"{head} {rest}"


def configure_access_log(log_format: str) -> None:
    """Access lines go to stderr on their own handler: bare JSON lines with ``json`` (for a log shipper),
    time-stamped text otherwise."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s" if log_format == "json" else
                                           "%(asctime)s ACCESS %(message)s"))
    access_logger.handlers[:] = [handler]
    access_logger.setLevel(logging.INFO)
    access_logger.propagate = False
