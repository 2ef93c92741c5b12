"""Rank fusion as pure functions on ranked lists of Hits (used by the hybrid retriever)."""
from __future__ import annotations

from odqa.retrieval.base import Hit


def reciprocal_rank_fusion(rankings: list[list[Hit]], k: float = 60.0, weights: list[float] | None = None) -> list[Hit]:
    """score(p) = sum_i w_i / (k + rank_i(p)); a passage absent from a ranking gets nothing from it."""
    weights = weights or [1.0] * len(rankings)
    fused: dict[str, float] = {}
    for w, ranking in zip(weights, rankings):
        for hit in ranking:
            fused[hit.passage_id] = fused.get(hit.passage_id, 0.0) + w / (k + hit.rank)
    return _ranked(fused)


def weighted_sum_fusion(rankings: list[list[Hit]], weights: list[float]) -> list[Hit]:
    """score(p) = sum_i w_i * minmax_i(score_i(p)); absent from ranking i -> 0 from it.

    Min-max per ranking puts BM25 (unbounded) and cosine/dot scores on one 0..1 scale.
    """
    fused: dict[str, float] = {}
    for w, ranking in zip(weights, rankings):
        if not ranking:
            continue
        scores = [h.score for h in ranking]
        low, span = min(scores), max(scores) - min(scores)
        for hit in ranking:
            norm = (hit.score - low) / span if span > 0 else 1.0
            fused[hit.passage_id] = fused.get(hit.passage_id, 0.0) + w * norm
    return _ranked(fused)


def _ranked(scores: dict[str, float]) -> list[Hit]:
    # ties keep first-seen order (dicts are ordered, sorted is stable)
    order = sorted(scores.items(), key=lambda item: -item[1])
    return [Hit(pid, score, rank) for rank, (pid, score) in enumerate(order, 1)]
