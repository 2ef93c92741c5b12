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


def zscore_fusion(rankings: list[list[Hit]], weights: list[float]) -> list[Hit]:
    """score(p) = sum_i w_i * z_i(p), z = (score - mean) / std over ranking i's own list; absent -> the list's
    minimum z (a passage missing from a deep list is at least as bad as its last entry).

    Unlike min-max, one outlier at the top does not squash every other score towards 0.
    """
    import numpy as np

    normalized, floors = [], []
    for ranking in rankings:
        scores = np.array([h.score for h in ranking], dtype=np.float64)
        std = scores.std() if len(scores) > 1 else 0.0
        z = (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)
        normalized.append({h.passage_id: float(v) for h, v in zip(ranking, z)})
        floors.append(float(z.min()) if len(z) else 0.0)
    passages = dict.fromkeys(pid for ids in normalized for pid in ids)  # first-seen order, for ties
    return _ranked({pid: sum(w * ids.get(pid, floor) for w, ids, floor in zip(weights, normalized, floors))
                    for pid in passages})


def _ranked(scores: dict[str, float]) -> list[Hit]:
    # ties keep first-seen order (dicts are ordered, sorted is stable)
    order = sorted(scores.items(), key=lambda item: -item[1])
    return [Hit(pid, score, rank) for rank, (pid, score) in enumerate(order, 1)]
