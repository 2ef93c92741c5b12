"""Knowing when not to answer: one threshold on the best answer's no-answer score.

Every window the reader reads has a no-answer score, the start + end logit of its first token (where
windows without the answer are labelled in training, and retrieved negatives teach it what such a
window looks like). A span's ``no_answer_score`` is that window score minus the span's start + end
logit: run_qa's ``null_score_diff``, taken in the span's own window so it means the same in every
passage. A question is answered "no answer" when its best answer's ``no_answer_score`` is above the
threshold (the SQuAD 2.0 scorer's convention: abstain when the score is above it). With no threshold
the reader always answers, as before.

The threshold is chosen on a labelled dev set holding unanswerable questions — ``odqa choose-threshold``
searches the best overall EM as the official SQuAD 2.0 script does — and stored in the reader folder
(``no_answer_threshold.json``), where ``ExtractiveReader.from_pretrained`` and so ``infer``/``serve``/
``ODQAPipeline`` find it. ``--no_answer_threshold`` overrides it (a number), or turns it off (``off``).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Sequence

from odqa.errors import ConfigError, DataError
from odqa.reader.answers import Answer

THRESHOLD_FILE = "no_answer_threshold.json"
# what --no_answer_threshold accepts besides a number
THRESHOLD_AUTO, THRESHOLD_OFF = "auto", "off"
THRESHOLD_HELP = ("Say \"no answer\" when the best answer's no_answer_score (its window's no-answer logit sum "
                  "minus the span's start + end logit) is above this. auto (default): the threshold stored with "
                  "the reader by `odqa choose-threshold`, or always answer if it has none; off: always answer; "
                  "a number: that threshold.")
NO_ANSWER_REASON = "no passage read holds an answer the reader prefers to 'no answer' (no_answer_score above " \
                   "the threshold)"


def read_stored_threshold(reader_dir: str | os.PathLike) -> float | None:
    """The threshold stored with a reader folder, or None (no file, or a hub name / alias without a folder)."""
    from odqa.utils.io import read_json

    path = Path(reader_dir) / THRESHOLD_FILE
    if not path.is_file():
        return None
    record = read_json(path)
    value = record.get("no_answer_threshold") if isinstance(record, dict) else None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise DataError(f"{path}: 'no_answer_threshold' must be a finite number, got {value!r}; choose it again "
                        "with `odqa choose-threshold` or delete the file to always answer.")
    return float(value)


def write_threshold(reader_dir: str | os.PathLike, threshold: float, record: Mapping) -> Path:
    """Store ``threshold`` (and how it was chosen) in the reader folder, atomically."""
    from odqa.utils.io import write_json

    folder = Path(reader_dir)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a reader folder; --reader must be the folder the threshold is stored in.")
    return write_json(folder / THRESHOLD_FILE, {"no_answer_threshold": float(threshold), **record})


def resolve_threshold(value: str | float | None, stored: float | None) -> float | None:
    """The threshold a command uses: a number as given; ``off`` → always answer; ``auto`` (or None) → ``stored``,
    the one stored with the reader (None when it has none)."""
    if value is None:
        return stored
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().lower()
    if text in {THRESHOLD_OFF, "none"}:
        return None
    if text in {THRESHOLD_AUTO, ""}:
        return stored
    try:
        number = float(text)
    except ValueError:
        raise ConfigError(f"--no_answer_threshold must be a number, '{THRESHOLD_AUTO}' (the reader's stored "
                          f"threshold, if any) or '{THRESHOLD_OFF}' (always answer); got {value!r}.") from None
    if not math.isfinite(number):
        raise ConfigError(f"--no_answer_threshold must be finite, got {value!r}.")
    return number


def apply_threshold(answers: list[Answer], threshold: float | None) -> list[Answer]:
    """Mark every answer of the question ``no_answer`` when its best one scores above ``threshold``."""
    if threshold is not None and answers and answers[0].no_answer_score > threshold:
        for answer in answers:
            answer.no_answer = True
    return answers


def abstains(answers: Sequence[Answer]) -> bool:
    """Whether the reader's answer to a question is "no answer" (abstained, or nothing was found)."""
    return not answers or answers[0].no_answer


def no_answer_scores_from_nbest(nbest: Mapping[str, Sequence[Mapping]], source: str = "nbest") -> dict[str, float]:
    """{question id: the best answer's ``no_answer_score``} from an ``nbest_predictions.json`` of ``odqa infer``
    or ``train-mrc --do_eval`` (a question with no candidates scores +inf: there is nothing to answer with)."""
    scores = {}
    for qid, entries in nbest.items():
        if not entries:
            scores[qid] = math.inf
            continue
        top = entries[0]
        if "no_answer_score" in top:
            scores[qid] = float(top["no_answer_score"])
        elif {"null_score", "start_logit", "end_logit"} <= set(top):  # n-best files written before the field
            scores[qid] = float(top["null_score"]) - float(top["start_logit"]) - float(top["end_logit"])
        else:
            raise DataError(f"{source}: question {qid!r}: its n-best entries have no 'no_answer_score'; write them "
                            "again with this version of odqa (`odqa infer` or `train-mrc --do_eval`).")
    return scores


def choose_threshold(rows: list[dict], nbest: dict[str, list[dict]], metric: str = "korquad_v2",
                     source: str = "nbest", max_has_answer_drop: float | None = None) -> dict:
    """The best-EM threshold of always-answer predictions and their no-answer scores, with the figures
    before and after (the record stored with the reader)."""
    from odqa.metrics.cli import labelled_references_of, score_v2
    from odqa.metrics.squad_v2 import choose_best_threshold

    asked = [r for r in rows if r["id"] in nbest]
    references = labelled_references_of(asked)
    if not references:
        raise ConfigError(f"{source}: none of its questions is a labelled question of the dataset; read the same "
                          "dev set with `odqa infer` first.")
    predictions = {qid: (entries[0]["text"] if entries else "") for qid, entries in nbest.items()}
    scores = no_answer_scores_from_nbest({q: nbest[q] for q in references}, source)
    threshold = choose_best_threshold(predictions, references, scores, metric, max_has_answer_drop)
    always = score_v2(asked, predictions, metric, scores)
    chosen = score_v2(asked, predictions, metric, scores, threshold)
    rule = "best overall EM" + ("" if max_has_answer_drop is None else
                                f" with HasAns EM within {max_has_answer_drop:g} points of always answering")
    return {"no_answer_threshold": threshold, "metric": metric, "rule": rule, "questions": always["total"],
            "has_answer": always.get("HasAns_total", 0), "no_answer": always.get("NoAns_total", 0),
            "always_answer": {k: always[k] for k in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact")
                              if k in always},
            "with_threshold": {k: chosen[k] for k in ("exact", "f1", "HasAns_exact", "NoAns_exact", "answer_rate")
                               if k in chosen}}
