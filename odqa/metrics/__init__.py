"""Answer metrics: EM and F1 under KorQuAD 1.0 rules (default) or SQuAD 1.1 rules.

>>> compute_metrics({"q1": "1989년"}, {"q1": ["1989년 2월"]})["exact_match"]
0.0
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

from odqa.errors import ConfigError
from odqa.metrics import korquad, squad

METRICS = {"korquad": korquad, "squad": squad}


def _rules(metric: str):
    try:
        return METRICS[metric]
    except KeyError:
        raise ConfigError(f"unknown metric {metric!r}; choose one of {sorted(METRICS)}.") from None


def metric_max_over_ground_truths(fn: Callable[[str, str], float], prediction: str,
                                  ground_truths: Sequence[str]) -> float:
    return max(fn(prediction, gt) for gt in ground_truths)


def compute_metrics(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
                    metric: str = "korquad") -> dict[str, float | int]:
    """EM/F1 (0–100) over every question in ``references`` (id → gold answer texts).

    Questions without a prediction score 0, as in the official scripts; questions without
    any gold answer are skipped (they cannot be scored) and counted in ``unscored``.
    """
    rules = _rules(metric)
    exact_match = f1 = total = unscored = missing = 0
    for qid, ground_truths in references.items():
        if not ground_truths:
            unscored += 1
            continue
        total += 1
        if qid not in predictions:
            missing += 1
            continue
        prediction = predictions[qid]
        exact_match += metric_max_over_ground_truths(rules.exact_match_score, prediction, ground_truths)
        f1 += metric_max_over_ground_truths(rules.f1_score, prediction, ground_truths)
    return {
        "exact_match": 100.0 * exact_match / total if total else 0.0,
        "f1": 100.0 * f1 / total if total else 0.0,
        "total": total,
        "missing_predictions": missing,
        "unscored": unscored,
        "metric": metric,
    }


__all__ = ["compute_metrics", "metric_max_over_ground_truths", "METRICS"]
