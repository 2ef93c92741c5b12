"""A small load generator for `odqa serve`: client threads, a mix of good and bad requests, a burst.

Used by the load test (tests/test_serve_load.py, bounded, loopback) and by ``benchmarks/serve_load.py``
(longer, on the KorQuAD-half index). Standard library only, so it runs against any server. Each client
records what it sent and what came back, so the caller can check there was no cross-talk (every good
request got its own question back), that bad requests got a 4xx, and compare its counts with the
server's ``/metrics``.
"""
from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Optional

# (kind, body bytes or None -> a good question, headers override): bad requests a client can send
BAD_KINDS = ("empty", "too_long", "bad_json", "wrong_key")


@dataclass
class Reply:
    kind: str  # "good" or one of BAD_KINDS
    question: Optional[str]
    status: int  # 0: no HTTP answer (connection refused or reset)
    body: Any
    seconds: float
    error: str = ""  # the connection error, when status is 0
    accepted: bool = True  # False when the connection was refused before any request was sent
    finished: float = field(default_factory=time.monotonic)  # when the reply came back (time.monotonic)


@dataclass
class LoadReport:
    replies: list[Reply] = field(default_factory=list)
    seconds: float = 0.0

    def by_kind_status(self) -> Counter:
        return Counter((r.kind, r.status) for r in self.replies)

    def by_status(self) -> dict[str, int]:
        """{status as text: replies}, keyed as the server's ``odqa_requests_total`` labels are."""
        return {str(status): n for status, n in Counter(r.status for r in self.replies).items()}

    def summary(self) -> dict[str, Any]:
        good = sorted(r.seconds for r in self.replies if r.kind == "good" and r.status == 200)
        pick = (lambda q: round(good[min(len(good) - 1, int(q * len(good)))], 3)) if good else (lambda q: None)
        n = len(self.replies)
        return {"requests": n, "seconds": round(self.seconds, 2),
                "requests_per_second": round(n / self.seconds, 2) if self.seconds else None,
                "answered": len(good), "p50_s": pick(0.50), "p99_s": pick(0.99),
                "share_503": round(sum(r.status == 503 for r in self.replies) / n, 4) if n else 0.0,
                "statuses": self.by_status()}


def send(url: str, kind: str, question: Optional[str], key: Optional[str], max_chars: int = 1000,
         timeout: float = 120.0) -> Reply:
    """One POST /answer of the given kind; never raises."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body: bytes
    if kind == "good":
        body = json.dumps({"question": question}).encode("utf-8")
    elif kind == "empty":
        body = json.dumps({"question": "   "}).encode("utf-8")
    elif kind == "too_long":
        body = json.dumps({"question": "가" * (max_chars + 1)}).encode("utf-8")
    elif kind == "bad_json":
        body = b'{"question": '
    elif kind == "wrong_key":
        body = json.dumps({"question": question or "?"}).encode("utf-8")
        headers["Authorization"] = "Bearer not-the-key-0123456789"
    else:
        raise ValueError(f"unknown request kind {kind!r}")
    request = urllib.request.Request(url.rstrip("/") + "/answer", data=body, headers=headers)
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, payload = err.code, err.read()
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as err:
        reason = getattr(err, "reason", err)
        refused = isinstance(reason, ConnectionRefusedError)
        return Reply(kind, question, 0, None, time.perf_counter() - start, f"{type(reason).__name__}: {reason}",
                     accepted=not refused)
    try:
        parsed = json.loads(payload.decode("utf-8"))
    except ValueError:
        parsed = payload.decode("utf-8", "replace")
    return Reply(kind, question, status, parsed, time.perf_counter() - start)


def run_load(url: str, questions: list[str], clients: int = 4, requests_per_client: int = 10,
             key: Optional[str] = None, bad_every: int = 0, burst: int = 0, max_chars: int = 1000) -> LoadReport:
    """``clients`` threads send ``requests_per_client`` requests each (every ``bad_every``-th one bad, cycling
    through BAD_KINDS, each client starting at another kind), then ``burst`` good requests are fired at once (to go past ``--max_queue``)."""
    report = LoadReport()
    lock = threading.Lock()

    def client(c: int) -> None:
        for n in range(requests_per_client):
            question = questions[(c * requests_per_client + n) % len(questions)]
            bad = bool(bad_every) and (n + 1) % bad_every == 0  # the k-th bad one of client c: kind c + k
            kind = BAD_KINDS[(c + (n + 1) // max(bad_every, 1) - 1) % len(BAD_KINDS)] if bad else "good"
            reply = send(url, kind, question, key, max_chars)
            with lock:
                report.replies.append(reply)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    if burst:
        with ThreadPoolExecutor(burst) as pool:
            report.replies += list(pool.map(lambda n: send(url, "good", questions[n % len(questions)], key, max_chars),
                                            range(burst)))
    report.seconds = time.perf_counter() - start
    return report


def scrape(url: str, key: Optional[str] = None) -> dict[tuple[str, tuple], float]:
    """``/metrics`` parsed by prometheus-client: {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    request = urllib.request.Request(url.rstrip("/") + "/metrics",
                                     headers={"Authorization": f"Bearer {key}"} if key else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode("utf-8")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}
