"""Search bodies (Elasticsearch Query DSL) as pure functions, and ``_msearch`` batches of them.

BM25: ``multi_match`` of type ``most_fields`` over ``title^boost`` and ``text`` (field scores add up,
like odqa's local BM25 that indexes the title with the text). Dense: top-level ``knn`` (8.x+) on the
``embedding`` field. Server-side hybrid: both in one request, whose scores Elasticsearch adds
(``boost`` = weight); odqa's own fusion instead runs the two searches and fuses like the local hybrid.
Only ids and scores come back (``_source: false``): passages are looked up in the index's corpus.
"""
from __future__ import annotations

from typing import Any, Sequence

from odqa.retrieval.es.schema import VECTOR_FIELD


def bm25_query(question: str, title_boost: float, boost: float = 1.0) -> dict[str, Any]:
    fields = ["text"] if title_boost == 0 else [f"title^{title_boost:g}", "text"]
    query: dict[str, Any] = {"query": question, "fields": fields, "type": "most_fields"}
    if boost != 1.0:
        query["boost"] = boost
    return {"multi_match": query}


def knn_clause(vector: Sequence[float], k: int, num_candidates: int, boost: float = 1.0) -> dict[str, Any]:
    clause: dict[str, Any] = {"field": VECTOR_FIELD, "query_vector": [float(x) for x in vector], "k": k,
                              "num_candidates": max(num_candidates, k)}
    if boost != 1.0:
        clause["boost"] = boost
    return clause


def bm25_body(question: str, k: int, title_boost: float) -> dict[str, Any]:
    return {"query": bm25_query(question, title_boost), "size": k, "_source": False, "track_total_hits": False}


def knn_body(vector: Sequence[float], k: int, num_candidates: int) -> dict[str, Any]:
    return {"knn": knn_clause(vector, k, num_candidates), "size": k, "_source": False, "track_total_hits": False}


def server_hybrid_body(question: str, vector: Sequence[float], k: int, num_candidates: int, title_boost: float,
                       weight: float) -> dict[str, Any]:
    """BM25 with boost ``weight`` plus kNN with boost ``1 - weight``, summed by the server."""
    return {"query": bm25_query(question, title_boost, boost=weight),
            "knn": knn_clause(vector, k, num_candidates, boost=1.0 - weight),
            "size": k, "_source": False, "track_total_hits": False}


def msearch_searches(index: str, bodies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``_msearch`` payload: a header line naming the index before each body."""
    searches: list[dict[str, Any]] = []
    for body in bodies:
        searches += [{"index": index}, body]
    return searches


def ranked_ids(response: dict[str, Any]) -> list[tuple[str, float]]:
    """(passage id, score) of one search response, best first."""
    return [(hit["_id"], float(hit["_score"])) for hit in response["hits"]["hits"]]
