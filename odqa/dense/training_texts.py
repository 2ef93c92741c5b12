"""The passage side of DPR training: which texts a question must pick out (positives) and which it must
rank below them (hard negatives) — whole contexts, or their token windows as the index scores them.

Why windows: an index built with ``--passage_window N`` scores a passage by its best window (MaxP), so an
encoder trained on whole passages (cut at ``--passage_max_length``) is trained for a different task than
the one it serves. With windows, a question's positive is a window of its own context that holds an
answer, its hard negatives are bm25's best windows of *other* contexts without an answer, and the other
windows of its own context are left out of its loss (they are not wrong answers to rank low: the passage
is right whichever of its windows wins).
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from odqa.data.loading import answer_texts
from odqa.dense.windows import passage_windows

logger = logging.getLogger("odqa.train_dpr")


@dataclass
class TrainingTexts:
    """Passage-side texts with, per training question, the texts that may stand for its context and its
    hard negatives (indices into ``texts``). ``owner[t]`` is the context row text ``t`` was cut from."""

    texts: list[str]
    owner: np.ndarray
    positives: list[list[int]]
    negatives: list[list[int]]

    def siblings(self, text: int) -> list[int]:
        """The other texts cut from ``text``'s context (left out of a loss where ``text`` is the positive)."""
        return [int(t) for t in np.flatnonzero(self.owner == self.owner[text]) if t != text]


def whole_contexts(rows: Sequence[dict[str, Any]], contexts: list[str], num_hard_negatives: int
                   ) -> TrainingTexts:
    """One text per context: a question's positive is its own context; negatives mined by bm25."""
    from odqa.retrieval.negatives import mine_hard_negatives

    row_of = {c: i for i, c in enumerate(contexts)}
    negatives = mine_hard_negatives([r["question"] for r in rows], [r["context"] for r in rows],
                                    [answer_texts(r) for r in rows], contexts, num_hard_negatives)
    return TrainingTexts(list(contexts), np.arange(len(contexts)), [[row_of[r["context"]]] for r in rows],
                         negatives)


def context_windows(rows: Sequence[dict[str, Any]], contexts: list[str], tokenizer: Any, window: int,
                    stride: int, num_hard_negatives: int) -> TrainingTexts:
    """Each context cut into windows (:func:`odqa.dense.windows.passage_windows`); a question's positives
    are its context's windows holding one of its answers (all its windows when none does, e.g. an answer
    cut by every window edge); its negatives bm25's best windows of other contexts without an answer."""
    from odqa.retrieval.negatives import mine_hard_negatives

    texts, owner = passage_windows(tokenizer, contexts, window, stride)
    by_context: list[list[int]] = [[] for _ in contexts]
    for t, c in enumerate(owner):
        by_context[c].append(t)
    row_of = {c: i for i, c in enumerate(contexts)}
    answers = [answer_texts(r) for r in rows]  # once: positives and mining both need them
    positives, fallbacks = [], 0
    for r, question_answers in zip(rows, answers):
        own = by_context[row_of[r["context"]]]
        keys = [a for a in question_answers if a.strip()]
        holding = [t for t in own if any(a in texts[t] for a in keys)]
        fallbacks += not holding
        positives.append(holding or own)
    if fallbacks:
        logger.info("%d of %d questions have no window holding an answer: all their context's windows count "
                    "as positives", fallbacks, len(rows))
    # a context has several windows: fetch more than needed, then drop the question's own context's
    most = max(len(w) for w in by_context)
    mined = mine_hard_negatives([r["question"] for r in rows], [r["context"] for r in rows], answers, texts,
                                num_hard_negatives + most, candidates=num_hard_negatives + 2 * most + 8)
    negatives = [[t for t in found if owner[t] != row_of[r["context"]]][:num_hard_negatives]
                 for r, found in zip(rows, mined)]
    return TrainingTexts(texts, owner, positives, negatives)


def contrastive_batch(batch: Sequence[int], questions: Sequence[str], units: TrainingTexts,
                      rng: random.Random | None = None) -> tuple[list[str], list[str], list[int], list[list[int]]]:
    """The texts of one training step for the questions ``batch`` (indices into ``questions``): the
    questions, the step's passage texts (each question's positive in order, then the hard negatives; each
    text once), each question's positive column, and per question the columns of its own context's other
    texts, which its loss must ignore.

    Each text once, because a passage that appears twice is a false negative for the question it belongs
    to: KorQuAD has about five questions per passage (a third of random batches of 16 hold two questions of
    one passage) and one question's hard negative is often another question's context.
    """
    rng = rng or random
    chosen = [rng.choice(units.positives[i]) for i in batch]
    passages: list[str] = []
    column: dict[str, int] = {}
    owners: list[int] = []
    for t in chosen + [n for i in batch for n in units.negatives[i]]:
        if units.texts[t] not in column:
            column[units.texts[t]] = len(passages)
            passages.append(units.texts[t])
            owners.append(int(units.owner[t]))
    positives = [column[units.texts[t]] for t in chosen]
    ignored = [[j for j, o in enumerate(owners) if o == units.owner[t] and j != p] for t, p in zip(chosen, positives)]
    return [questions[i] for i in batch], passages, positives, ignored
