"""Post-processing as pure numpy: logits over windows → the best answer span per example.

An example's n-best list gathers candidates from ALL its windows; a candidate's text is cut
from the original context by the character offsets of its first and last token, so it is
right even when the tokenizer normalized the text (NFD jamo, lowercasing).
"""
from __future__ import annotations

import collections
import os
from typing import Any, Mapping, Sequence

import numpy as np

from odqa.reader.boundaries import refine_span
from odqa.utils.io import write_json


def softmax(scores: Sequence[float]) -> np.ndarray:
    """Probabilities of span scores (float64, max-shifted: no overflow on large logits); [] for []."""
    x = np.asarray(scores, dtype=np.float64)
    if not len(x):
        return x
    e = np.exp(x - x.max())
    return e / e.sum()


def best_spans_in_window(start_logits: np.ndarray, end_logits: np.ndarray,
                         offsets: Sequence[Any], n_best_size: int, max_answer_length: int
                         ) -> list[tuple[float, int, int]]:
    """Top ``n_best_size`` valid (score, start_token, end_token) spans of one window.

    Valid: both tokens are context tokens, end ≥ start, at most ``max_answer_length`` tokens.
    The search is over the top-n start × top-n end candidates, as a matrix.
    """
    is_context = np.array([o is not None and len(o) == 2 for o in offsets], dtype=bool)
    n = len(offsets)
    start_logits, end_logits = np.asarray(start_logits)[:n], np.asarray(end_logits)[:n]
    starts = np.argsort(start_logits)[::-1][:n_best_size]
    ends = np.argsort(end_logits)[::-1][:n_best_size]
    starts = starts[is_context[starts]]
    ends = ends[is_context[ends]]
    if len(starts) == 0 or len(ends) == 0:
        return []
    length = ends[None, :] - starts[:, None]
    valid = (length >= 0) & (length < max_answer_length)
    scores = start_logits[starts][:, None] + end_logits[ends][None, :]
    si, ei = np.nonzero(valid)
    order = np.argsort(-scores[si, ei], kind="stable")[:n_best_size]
    return [(float(scores[si[k], ei[k]]), int(starts[si[k]]), int(ends[ei[k]])) for k in order]


def postprocess_qa_predictions(examples, features, predictions: tuple[np.ndarray, np.ndarray],
                               n_best_size: int = 20, max_answer_length: int = 30,
                               morpheme_boundaries: bool = True, score_against_null: bool = True,
                               probabilities: bool = True) -> tuple[dict[str, str], dict[str, list[dict]]]:
    """Return ``({id: text}, {id: n-best list})`` for every example.

    Each n-best entry: text, start_logit, end_logit, score, probability (softmax over the
    example's n-best scores), and ``offsets`` = [start_char, end_char) in the context.
    Spans are trimmed of whitespace and, with ``morpheme_boundaries``, of Korean particles glued
    to their last token (:func:`odqa.reader.boundaries.refine_span`).

    ``score_against_null``: a span's score is start + end logit *minus its window's no-answer score*
    (start + end logit of the first token, where windows without the answer are labelled). Within a
    window that changes no ranking; across windows and passages it makes scores comparable: a reader
    trained with no-answer windows (and retrieved negatives) scores a span in a passage without the
    answer below zero. ``null_score`` is kept in each n-best entry, and ``no_answer_score`` = null score minus
    the span's start + end logit (what a no-answer threshold compares with, :mod:`odqa.reader.abstention`). ``probabilities=False`` leaves
    ``probability`` out (the pipeline ranks candidates across a question's passages and computes it there).
    """
    start_logits, end_logits = predictions
    if len(start_logits) != len(features):
        raise ValueError(f"got {len(start_logits)} predictions for {len(features)} features.")
    features_per_example: dict[str, list[int]] = collections.defaultdict(list)
    for i, example_id in enumerate(features["example_id"]):
        features_per_example[example_id].append(i)
    all_offsets = list(features["offset_mapping"])  # materialized once: row access on a Dataset is slow

    answers: dict[str, str] = {}
    nbest_json: dict[str, list[dict]] = {}
    for example in examples:
        context = example["context"]
        candidates = []
        for fi in features_per_example.get(example["id"], []):
            offsets = all_offsets[fi]
            null_score = float(start_logits[fi][0] + end_logits[fi][0])
            shift = null_score if score_against_null else 0.0
            for score, s, e in best_spans_in_window(start_logits[fi], end_logits[fi], offsets,
                                                    n_best_size, max_answer_length):
                start_char, end_char = refine_span(context, offsets[s][0], offsets[e][1], offsets[e][0],
                                                   morpheme_boundaries)
                if end_char <= start_char:
                    continue
                candidates.append({
                    "text": context[start_char:end_char],
                    "start_logit": float(start_logits[fi][s]),
                    "end_logit": float(end_logits[fi][e]),
                    "score": score - shift,
                    "null_score": null_score,
                    "no_answer_score": null_score - score,  # > 0: the window prefers "no answer" to this span
                    "offsets": [int(start_char), int(end_char)],
                })
        # the same span is often found in two overlapping windows: keep its best score
        unique: dict[tuple[int, int], dict] = {}
        for cand in sorted(candidates, key=lambda c: c["score"], reverse=True):
            unique.setdefault(tuple(cand["offsets"]), cand)
        best = list(unique.values())[:n_best_size]
        if not best:
            best = [{"text": "", "start_logit": 0.0, "end_logit": 0.0, "score": 0.0, "null_score": 0.0,
                     "no_answer_score": 0.0, "offsets": [0, 0]}]
        if probabilities:
            for cand, prob in zip(best, softmax([c["score"] for c in best])):
                cand["probability"] = float(prob)
        answers[example["id"]] = best[0]["text"]
        nbest_json[example["id"]] = best
    return answers, nbest_json


def write_predictions(predictions: Mapping[str, str], nbest: Mapping[str, list[dict]] | None,
                      output_dir: str | os.PathLike, prefix: str | None = None) -> None:
    """Write ``predictions.json`` (id → text) and ``nbest_predictions.json``, atomically."""
    name = f"{prefix}_" if prefix else ""
    write_json(os.path.join(output_dir, f"{name}predictions.json"), dict(predictions))
    if nbest is not None:
        write_json(os.path.join(output_dir, f"{name}nbest_predictions.json"), dict(nbest))
