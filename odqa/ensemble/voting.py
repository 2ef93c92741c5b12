"""Combining runs' answers, as pure functions over ``{question id: n-best list}`` mappings.

Methods:

* ``vote``: each run gives its weight to its top answer; the text with most votes wins. Ties (common with
  2 or 4 runs) are broken by ``tie_break``: ``probability`` (the tied text with the larger summed
  probability over every run's n-best), ``shorter`` or ``longer`` (the competition code's two rules).
* ``probability``: every n-best entry adds weight x probability to its text; the largest sum wins, so a
  text that is second everywhere can beat a text that is first once.

Texts are compared after stripping surrounding whitespace. A run's ``predictions.json`` (``{id: text}``)
counts as an n-best list of one answer with probability 1.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from odqa.errors import DataError

ENSEMBLE_METHODS = ("vote", "probability")
TIE_BREAKS = ("probability", "shorter", "longer")
NBEST_FILE = "nbest_predictions.json"
PREDICTIONS_FILE = "predictions.json"

Run = Mapping[str, Sequence[Mapping[str, Any]]]


def load_run(path: str | os.PathLike) -> dict[str, list[dict[str, Any]]]:
    """A run as ``{question id: [{text, probability}, ...]}`` from its folder (its nbest_predictions.json,
    else predictions.json) or one of those files."""
    from odqa.utils.io import read_json

    path = Path(path)
    if path.is_dir():
        found = [path / name for name in (NBEST_FILE, PREDICTIONS_FILE) if (path / name).is_file()]
        if not found:
            raise DataError(f"{path}: no {NBEST_FILE} or {PREDICTIONS_FILE} in this folder; give a run's output "
                            "folder (odqa infer / train-mrc --output_dir) or one of those files.")
        path = found[0]
    elif not path.is_file():
        raise DataError(f"{path}: not found; give a run's output folder or its {NBEST_FILE}.")
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object keyed by question id.")
    run: dict[str, list[dict[str, Any]]] = {}
    for qid, value in data.items():
        if isinstance(value, str):  # predictions.json
            run[str(qid)] = [{"text": value, "probability": 1.0}]
            continue
        if not isinstance(value, list) or not all(isinstance(a, dict) and isinstance(a.get("text"), str)
                                                  for a in value):
            raise DataError(f"{path}: question {qid!r} should map to an answer text or a list of answers with a "
                            "'text' (an n-best list).")
        run[str(qid)] = [{"text": a["text"], "probability": float(a.get("probability", 0.0) or 0.0)} for a in value]
    return run


def ensemble_predictions(runs: Sequence[Run], method: str = "vote", tie_break: str = "probability",
                         weights: Sequence[float] | None = None
                         ) -> tuple[dict[str, str], dict[str, list[dict[str, Any]]]]:
    """(predictions ``{id: text}``, n-best ``{id: [{text, votes, probability, runs}]}`` best first)."""
    if method not in ENSEMBLE_METHODS:
        raise ValueError(f"unknown ensemble method {method!r}: choose one of {', '.join(ENSEMBLE_METHODS)}.")
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"unknown tie break {tie_break!r}: choose one of {', '.join(TIE_BREAKS)}.")
    if not runs:
        raise ValueError("no runs to ensemble.")
    weights = [1.0] * len(runs) if weights is None else [float(w) for w in weights]
    if len(weights) != len(runs):
        raise ValueError(f"{len(weights)} weights for {len(runs)} runs: give one weight per run.")

    question_ids = list(dict.fromkeys(qid for run in runs for qid in run))
    predictions: dict[str, str] = {}
    nbest: dict[str, list[dict[str, Any]]] = {}
    for qid in question_ids:
        table: dict[str, dict[str, float]] = {}
        for run, weight in zip(runs, weights):
            answers = run.get(qid) or []
            seen: set[str] = set()
            for rank, answer in enumerate(answers):
                text = answer["text"].strip()
                row = table.setdefault(text, {"votes": 0.0, "probability": 0.0, "runs": 0, "first": len(table)})
                row["probability"] += weight * float(answer.get("probability", 0.0))
                if rank == 0:
                    row["votes"] += weight
                if text not in seen:
                    row["runs"] += 1
                    seen.add(text)
        ranked = sorted(table.items(), key=lambda item: _rank_key(item[0], item[1], method, tie_break))
        nbest[qid] = [{"text": text, "votes": row["votes"], "probability": row["probability"], "runs": int(row["runs"])}
                      for text, row in ranked]
        predictions[qid] = ranked[0][0] if ranked else ""
    return predictions, nbest


def _rank_key(text: str, row: Mapping[str, float], method: str, tie_break: str) -> tuple:
    """Sort key, smallest first: the method's score, then the tie break, then summed probability, then the
    order in which texts were first seen (deterministic)."""
    tie = {"probability": -row["probability"], "shorter": len(text), "longer": -len(text)}[tie_break]
    if method == "vote":
        return (-row["votes"], tie, -row["probability"], row["first"])
    return (-row["probability"], tie, -row["votes"], row["first"])
