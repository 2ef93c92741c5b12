"""SQuAD 2.0 scoring: questions with and without an answer, and the best no-answer threshold.

The accounting follows the official SQuAD 2.0 evaluation script operation for operation: a
question without an answer has the empty string as its only gold answer (so an abstention, ``""``,
scores 1 on it and any span 0); F1 is 1 when prediction and gold are both empty, 0 when only one
is; gold answers that normalize to nothing are dropped; ``HasAns_*`` and ``NoAns_*`` split the
totals; and, given a no-answer score per question (the official ``na_prob``: higher means more
likely "no answer"), a threshold ``t`` turns every prediction whose score is above ``t`` into an
abstention, and ``best_exact``/``best_f1`` are the best totals over all thresholds with the
threshold that reaches them (the official ``find_best_thresh``: a single sweep in score order).

Two sets of rules: ``squad_v2`` (SQuAD's token F1, English articles removed) and ``korquad_v2``
(the same accounting with KorQuAD 1.0's normalization and character F1, for Korean: a word with a
particle glued to it is not a wrong token).

odqa's no-answer score is ``no_answer_score`` of the best answer: its window's no-answer logit sum
(start + end logit of the first token) minus the span's start + end logit — run_qa's
``null_score_diff`` computed per window (:mod:`odqa.reader.abstention`).
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Mapping, Sequence

from odqa.errors import ConfigError
from odqa.metrics import korquad, squad
from odqa.metrics.overlap import overlap_f1

RULES = {"squad_v2": squad, "korquad_v2": korquad}


def _tokens(rules, text: str) -> list[str]:
    """What F1 counts: SQuAD's whitespace tokens, or KorQuAD's characters (spaces removed)."""
    if not text:
        return []
    normalized = rules.normalize_answer(text)
    return list("".join(normalized.split())) if rules is korquad else normalized.split()


def exact_score(rules, gold: str, prediction: str) -> int:
    return int(rules.normalize_answer(gold) == rules.normalize_answer(prediction))


def f1_score(rules, gold: str, prediction: str) -> float:
    gold_tokens, prediction_tokens = _tokens(rules, gold), _tokens(rules, prediction)
    if not gold_tokens or not prediction_tokens:  # an abstention is right only on a question without answer
        return int(gold_tokens == prediction_tokens)
    num_same = sum((Counter(gold_tokens) & Counter(prediction_tokens)).values())
    return overlap_f1(num_same, len(prediction_tokens), len(gold_tokens))


def raw_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]], rules
               ) -> tuple[dict[str, float], dict[str, float]]:
    """Per question EM and F1 of the predictions as they are (a missing prediction is an abstention)."""
    exact, f1 = {}, {}
    for qid, answers in references.items():
        golds = [a for a in answers if rules.normalize_answer(a)] or [""]
        prediction = predictions.get(qid, "")
        exact[qid] = max(exact_score(rules, g, prediction) for g in golds)
        f1[qid] = max(f1_score(rules, g, prediction) for g in golds)
    return exact, f1


def apply_threshold(scores: Mapping[str, float], no_answer_scores: Mapping[str, float],
                    has_answer: Mapping[str, bool], threshold: float) -> dict[str, float]:
    """Scores after abstaining wherever the no-answer score is above ``threshold``."""
    return {qid: (float(not has_answer[qid]) if no_answer_scores[qid] > threshold else s)
            for qid, s in scores.items()}


def best_threshold(predictions: Mapping[str, str], scores: Mapping[str, float],
                   no_answer_scores: Mapping[str, float], has_answer: Mapping[str, bool],
                   abstain_all: float = 0.0, min_has_answer: float | None = None) -> tuple[float, float]:
    """(best total 0–100, its threshold): start from abstaining everywhere, answer questions in order of
    rising no-answer score, keep the best running total (ties keep the lower threshold).

    When abstaining everywhere is best, the threshold is ``abstain_all``: 0.0 in the official script (which
    then does not reproduce that total); :func:`odqa.pipeline.choose_threshold.choose_threshold` passes a
    value below every score, so the stored threshold gives the figure it was chosen for.

    ``min_has_answer`` (a sum of per-question scores over the answerable questions) keeps only thresholds
    whose answerable questions still score at least that much; a threshold is then only taken after the
    last of the questions that share its score (a threshold answers all of them or none)."""
    ordered = [qid for qid in sorted(no_answer_scores, key=lambda k: no_answer_scores[k]) if qid in scores]
    current = sum(1 for qid in scores if not has_answer[qid])
    answered = 0.0  # running total over the answerable questions answered so far
    constrained = min_has_answer is not None
    best, threshold = (-1, abstain_all) if constrained and min_has_answer > 0 else (current, abstain_all)
    for n, qid in enumerate(ordered):
        if has_answer[qid]:
            current += scores[qid]
            answered += scores[qid]
        else:
            current += -1 if predictions.get(qid, "") else 0
        if constrained:
            last_of_tie = n + 1 == len(ordered) or no_answer_scores[ordered[n + 1]] != no_answer_scores[qid]
            if not last_of_tie or answered < min_has_answer - 1e-9:
                continue
        if current > best:
            best, threshold = current, no_answer_scores[qid]
    return 100.0 * best / len(scores), threshold


def choose_best_threshold(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
                          no_answer_scores: Mapping[str, float], metric: str = "korquad_v2",
                          max_has_answer_drop: float | None = None) -> float:
    """The threshold with the best overall EM that reproduces it when applied: the official search, except that
    where abstaining on every question is best it is a value below every score (the official script says 0.0).

    ``max_has_answer_drop`` (EM points): only thresholds that keep HasAns EM within that many points of
    always answering, for users to whom a missed answer costs more than a wrong one."""
    rules = RULES[metric]
    finite = [v for v in no_answer_scores.values() if math.isfinite(v)]
    exact = raw_scores(predictions, references, rules)[0]
    has_answer = {q: bool(v) for q, v in references.items()}
    min_has_answer = None
    if max_has_answer_drop is not None:
        if max_has_answer_drop < 0:
            raise ConfigError(f"max_has_answer_drop must be at least 0 EM points (got {max_has_answer_drop}).")
        answerable = [q for q in references if has_answer[q] and q in no_answer_scores]
        min_has_answer = sum(exact[q] for q in answerable) - max_has_answer_drop / 100.0 * len(answerable)
    _, threshold = best_threshold(predictions, exact, no_answer_scores, has_answer,
                                  abstain_all=min(finite) - 1.0 if finite else 0.0, min_has_answer=min_has_answer)
    return threshold


def _totals(exact: Mapping[str, float], f1: Mapping[str, float], qids: Sequence[str]) -> dict[str, float | int]:
    return {"exact": 100.0 * sum(exact[q] for q in qids) / len(qids),
            "f1": 100.0 * sum(f1[q] for q in qids) / len(qids), "total": len(qids)}


def compute_squad_v2(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
                     no_answer_scores: Mapping[str, float] | None = None, threshold: float | None = None,
                     metric: str = "squad_v2") -> dict:
    """SQuAD 2.0 figures (0–100) over every question of ``references`` (id → gold texts; [] = no answer).

    ``predictions``: id → text, ``""`` for an abstention (a missing id counts as one, and is counted in
    ``missing_predictions``; the official script needs every prediction). ``no_answer_scores`` (id → score,
    higher = more likely no answer) adds ``best_exact``/``best_f1`` and their thresholds; with
    ``threshold`` as well, the main figures are those after abstaining above it (the official
    ``--na-prob-thresh``). Keys are the official script's (exact, f1, total, HasAns_*, NoAns_*, best_*),
    plus ``answer_rate`` (share of questions given a non-empty answer) and ``missing_predictions``.
    """
    if metric not in RULES:
        raise ConfigError(f"unknown metric {metric!r}; choose one of {sorted(RULES)}.")
    if not references:
        raise ConfigError("no questions to score.")
    rules = RULES[metric]
    has_answer = {qid: bool(answers) for qid, answers in references.items()}
    if no_answer_scores is not None:
        missing = [qid for qid in references if qid not in no_answer_scores]
        if missing:
            raise ConfigError(f"{len(missing)} question(s) have no no-answer score (e.g. {missing[:3]}); give "
                              "one per question (an abstained or unread question: a large value).")
    exact_raw, f1_raw = raw_scores(predictions, references, rules)
    answered = {qid: bool(predictions.get(qid, "")) for qid in references}
    exact, f1 = exact_raw, f1_raw
    if threshold is not None:
        if no_answer_scores is None:
            raise ConfigError("a no-answer threshold needs a no-answer score per question.")
        exact = apply_threshold(exact_raw, no_answer_scores, has_answer, threshold)
        f1 = apply_threshold(f1_raw, no_answer_scores, has_answer, threshold)
        answered = {qid: a and no_answer_scores[qid] <= threshold for qid, a in answered.items()}
    out: dict = dict(_totals(exact, f1, list(references)))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [qid for qid, has in has_answer.items() if has == wanted]
        if qids:
            out.update({f"{prefix}_{k}": v for k, v in _totals(exact, f1, qids).items()})
    if no_answer_scores is not None:
        out["best_exact"], out["best_exact_thresh"] = best_threshold(predictions, exact_raw, no_answer_scores,
                                                                     has_answer)
        out["best_f1"], out["best_f1_thresh"] = best_threshold(predictions, f1_raw, no_answer_scores, has_answer)
    out["answer_rate"] = 100.0 * sum(answered.values()) / len(answered)
    out["missing_predictions"] = sum(1 for qid in references if qid not in predictions)
    out["metric"] = metric
    if threshold is not None:
        out["no_answer_threshold"] = threshold
    return out


__all__ = ["compute_squad_v2", "best_threshold", "choose_best_threshold", "apply_threshold", "raw_scores", "RULES"]
