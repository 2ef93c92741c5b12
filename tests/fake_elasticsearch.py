"""A loopback HTTP server speaking just enough of the Elasticsearch REST API for odqa's client paths.

Not a search engine: BM25 is replaced by counting shared lower-cased words (boosted per field), kNN
by a dot product, which is enough to check ranks end to end. What it does model faithfully is the
protocol: the product header, JSON/NDJSON bodies, aliases, ``_meta``, 429s on bulk items or whole
requests, 401 without the configured API key, and the 400 a cluster without nori returns.
Every request is recorded (method, path, parsed body) so tests can assert what the client sent.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Request:
    method: str
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class FakeCluster:
    api_key: str | None = None
    nori: bool = True
    bulk_item_rejections: int = 0  # the first N documents sent get 429 (streaming_bulk must retry them)
    bulk_item_failures: set[str] = field(default_factory=set)  # ids that always fail with 400
    request_rejections: dict[str, int] = field(default_factory=dict)  # endpoint -> first N requests get 429
    indices: dict[str, dict[str, Any]] = field(default_factory=dict)
    aliases: dict[str, set[str]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, method: str | None = None, endpoint: str | None = None) -> list[Request]:
        return [r for r in self.requests if (method is None or r.method == method)
                and (endpoint is None or r.path.rstrip("/").endswith(endpoint))]

    # ------------------------------------------------------------ index resolution
    def resolve(self, name: str) -> list[str]:
        if name in self.aliases:
            return sorted(self.aliases[name])
        return [name] if name in self.indices else []


def _error(status: int, kind: str, reason: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
                    "status": status}


def _not_found(name: str) -> tuple[int, dict[str, Any]]:
    return _error(404, "index_not_found_exception", f"no such index [{name}]")


def _words(text: str) -> list[str]:
    return [w for w in "".join(c if c.isalnum() else " " for c in str(text).lower()).split() if w]


def _bm25_like(source: dict[str, Any], multi_match: dict[str, Any]) -> float:
    query = set(_words(multi_match["query"]))
    score = 0.0
    for spec in multi_match["fields"]:
        name, _, boost = spec.partition("^")
        score += float(boost or 1) * sum(1 for w in _words(source.get(name, "")) if w in query)
    return score * float(multi_match.get("boost", 1.0))


def _search(cluster: FakeCluster, index: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    names = cluster.resolve(index)
    if not names:
        return _not_found(index)
    docs = {doc_id: src for name in names for doc_id, src in cluster.indices[name]["docs"].items()}
    scores: dict[str, float] = {}
    if "query" in body:
        for doc_id, src in docs.items():
            s = _bm25_like(src, body["query"]["multi_match"])
            if s > 0:
                scores[doc_id] = s
    if "knn" in body:
        knn = body["knn"]
        if any(knn["field"] not in src for src in docs.values()):
            return _error(400, "illegal_argument_exception", f"field [{knn['field']}] is not a dense_vector")
        sims = {doc_id: (1 + sum(a * b for a, b in zip(knn["query_vector"], src[knn["field"]]))) / 2
                for doc_id, src in docs.items()}
        for doc_id in sorted(sims, key=lambda d: (-sims[d], d))[:knn["k"]]:
            scores[doc_id] = scores.get(doc_id, 0.0) + sims[doc_id] * float(knn.get("boost", 1.0))
    ranked = sorted(scores, key=lambda d: (-scores[d], d))[:body.get("size", 10)]
    hits = []
    for d in ranked:
        hit = {"_index": names[0], "_id": d, "_score": scores[d]}
        wanted = body.get("_source", True)
        if wanted is not False:
            hit["_source"] = {k: v for k, v in docs[d].items() if wanted is True or k in wanted}
        hits.append(hit)
    return 200, {"took": 1, "timed_out": False,
                 "hits": {"max_score": scores[ranked[0]] if ranked else None, "hits": hits}}


def _handle(cluster: FakeCluster, method: str, path: str, body: Any, headers: dict[str, str]
            ) -> tuple[int, dict[str, Any] | None]:
    if cluster.api_key is not None and headers.get("authorization") != f"ApiKey {cluster.api_key}":
        return _error(401, "security_exception", f"missing authentication credentials for REST request [{path}]")
    parts = [p for p in path.split("/") if p]
    endpoint = next((p for p in reversed(parts) if p.startswith("_")), "")
    if cluster.request_rejections.get(endpoint, 0) > 0:
        cluster.request_rejections[endpoint] -= 1
        return _error(429, "es_rejected_execution_exception", "rejected execution (queue capacity 200)")
    if not parts:
        return 200, {"name": "fake", "cluster_name": "fake", "version": {"number": "9.0.0"},
                     "tagline": "You Know, for Search"}
    if parts[0] == "_alias" and len(parts) == 2:
        members = cluster.aliases.get(parts[1])
        if not members:
            return _error(404, "aliases_not_found_exception", f"alias [{parts[1]}] missing")
        return 200, {name: {"aliases": {parts[1]: {}}} for name in sorted(members)}
    if parts == ["_aliases"]:
        for action in body["actions"]:
            (kind, spec), = action.items()
            if kind == "add":
                cluster.aliases.setdefault(spec["alias"], set()).add(spec["index"])
            else:
                cluster.aliases.get(spec["alias"], set()).discard(spec["index"])
        cluster.aliases = {a: m for a, m in cluster.aliases.items() if m}
        return 200, {"acknowledged": True}
    if parts == ["_bulk"]:
        return _bulk(cluster, body)
    if endpoint == "_msearch":
        responses, default = [], parts[0] if parts[0] != "_msearch" else None
        for header, search in zip(body[::2], body[1::2]):
            status, result = _search(cluster, header.get("index", default), search)
            responses.append({**result, "status": status})
        return 200, {"took": 1, "responses": responses}
    name = parts[0]
    if len(parts) == 1:
        if method == "HEAD":
            return (200 if name in cluster.indices else 404), None
        if method == "PUT":
            if name in cluster.indices or name in cluster.aliases:
                return _error(400, "resource_already_exists_exception", f"index [{name}] already exists")
            for tokenizer_name, spec in body["settings"].get("analysis", {}).get("tokenizer", {}).items():
                if spec.get("type") == "nori_tokenizer" and not cluster.nori:
                    return _error(400, "illegal_argument_exception",
                                  f"Unknown tokenizer type [nori_tokenizer] for [{tokenizer_name}]")
            cluster.indices[name] = {"body": body, "docs": {}, "settings": dict(body["settings"].get("index", {}))}
            return 200, {"acknowledged": True, "index": name}
        if method == "DELETE":
            if name not in cluster.indices:
                return _not_found(name)
            del cluster.indices[name]
            for members in cluster.aliases.values():
                members.discard(name)
            return 200, {"acknowledged": True}
    targets = cluster.resolve(name)
    if not targets:
        return _not_found(name)
    if endpoint == "_settings":
        for target in targets:
            cluster.indices[target]["settings"].update(body.get("index", body))
        return 200, {"acknowledged": True}
    if endpoint == "_refresh":
        return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
    if endpoint == "_count":
        return 200, {"count": sum(len(cluster.indices[t]["docs"]) for t in targets)}
    if endpoint == "_mapping":
        return 200, {t: {"mappings": cluster.indices[t]["body"]["mappings"]} for t in targets}
    if endpoint == "_search":
        return _search(cluster, name, body or {})
    return _error(400, "unsupported_by_fake", f"{method} {path} is not implemented by the fake cluster")


def _bulk(cluster: FakeCluster, lines: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    items, errors = [], False
    for action, source in zip(lines[::2], lines[1::2]):
        (kind, meta), = action.items()
        doc_id, index = str(meta["_id"]), meta["_index"]
        if cluster.bulk_item_rejections > 0:
            cluster.bulk_item_rejections -= 1
            items.append({kind: {"_index": index, "_id": doc_id, "status": 429, "error": {
                "type": "es_rejected_execution_exception", "reason": "rejected execution of bulk item"}}})
            errors = True
        elif doc_id in cluster.bulk_item_failures or index not in cluster.indices:
            items.append({kind: {"_index": index, "_id": doc_id, "status": 400, "error": {
                "type": "document_parsing_exception", "reason": f"failed to parse document {doc_id}"}}})
            errors = True
        else:
            cluster.indices[index]["docs"][doc_id] = source
            items.append({kind: {"_index": index, "_id": doc_id, "status": 201, "result": "created"}})
    return 200, {"took": 1, "errors": errors, "items": items}


def _parse(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8")
    if "ndjson" in content_type:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


class _Handler(BaseHTTPRequestHandler):
    cluster: FakeCluster

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = _parse(raw, headers.get("content-type", ""))
        with self.cluster.lock:
            self.cluster.requests.append(Request(self.command, path, body, headers))
            status, payload = _handle(self.cluster, self.command, path, body, headers)
        data = b"" if payload is None else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass


class FakeElasticsearch:
    """``with FakeElasticsearch() as fake: fake.url ... fake.cluster.requests``."""

    def __init__(self, **cluster_options: Any) -> None:
        self.cluster = FakeCluster(**cluster_options)
        handler = type("Handler", (_Handler,), {"cluster": self.cluster})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeElasticsearch":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
