"""Passages scored by their best window (MaxP): a passage is encoded as overlapping token windows and a
question's score for it is the best of its windows' scores.

Why: one vector per passage averages a whole paragraph, while a KorQuAD question asks about one sentence
of it; windows keep that sentence's signal (and read past the encoder's 512-token limit). On the held-out
KorQuAD articles, 128-token windows lift zero-shot e5-small's R@1 by about 5 points (BENCHMARKS.md).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from odqa.errors import ConfigError


def check_window(window: int, stride: int | None) -> int:
    """The stride to use (default: half the window), after checking both."""
    if window < 0:
        raise ConfigError(f"passage window must be >= 0 tokens (0: whole passages), got {window}.")
    stride = stride or max(1, window // 2)
    if window and not 0 < stride <= window:
        raise ConfigError(f"window stride must be in 1..{window} (the window), got {stride}.")
    return stride


def passage_windows(tokenizer: Any, texts: Sequence[str], window: int, stride: int
                    ) -> tuple[list[str], np.ndarray]:
    """Each text cut into windows of ``window`` tokens every ``stride`` tokens (the last one ends at the
    text's end), as substrings of the original text; and the owning text's row for each window."""
    chunks: list[str] = []
    owner: list[int] = []
    # one batched call: a fast tokenizer splits the whole corpus at once instead of text by text
    all_offsets = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True,
                            verbose=False)["offset_mapping"] if len(texts) else []
    for row, (text, offsets) in enumerate(zip(texts, all_offsets)):
        offsets = [o for o in offsets if o[1] > o[0]]
        if len(offsets) <= window:
            chunks.append(text)
            owner.append(row)
            continue
        starts = list(range(0, len(offsets) - window, stride)) + [len(offsets) - window]
        for start in starts:
            chunks.append(text[offsets[start][0]:offsets[start + window - 1][1]])
            owner.append(row)
    return chunks, np.asarray(owner, dtype=np.int64)


def best_window_per_passage(scores: np.ndarray, rows: np.ndarray, owner: np.ndarray, k: int
                            ) -> tuple[np.ndarray, np.ndarray]:
    """From each query's windows ranked best first (``rows`` index ``owner``; -1 = none), its top ``k``
    passages, each scored by its best window. Padded with row -1 / score -inf."""
    out_scores = np.full((len(rows), k), -np.inf, dtype=np.float32)
    out_rows = np.full((len(rows), k), -1, dtype=np.int64)
    for i, (window_scores, window_rows) in enumerate(zip(scores, rows)):
        found = window_rows >= 0
        passages = owner[window_rows[found]]
        # windows come best first, so a passage's first window is its best one
        _, first = np.unique(passages, return_index=True)
        first = np.sort(first)[:k]
        out_scores[i, :len(first)] = window_scores[found][first]
        out_rows[i, :len(first)] = passages[first]
    return out_scores, out_rows


def windows_to_search(k: int, owner: np.ndarray) -> int:
    """How many windows a query must fetch to be sure of ``k`` distinct passages (or all of them)."""
    most = int(np.bincount(owner).max()) if len(owner) else 1
    return min(len(owner), k * most)
