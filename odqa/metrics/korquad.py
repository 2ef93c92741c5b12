"""KorQuAD 1.0 scoring rules.

These follow the official KorQuAD v1.0 evaluation script operation for operation (same
normalization order, same character-level F1, same accumulation), so that figures agree with
it to the last digit. KorQuAD F1 is over *characters* because Korean words carry particles
(혐의로 = 혐의 + 로): a token F1 would give 0 to a prediction that is off by one particle.
"""
from __future__ import annotations

import re
import string
from collections import Counter

from odqa.metrics.overlap import overlap_f1

_KORQUAD_SPACE_CHARS = re.compile("['\"《》<>〈〉()‘’]")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Quotes and brackets → space, lowercase, ASCII punctuation removed, whitespace collapsed."""
    text = _KORQUAD_SPACE_CHARS.sub(" ", text).lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    return " ".join(text.split())


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_score(prediction: str, ground_truth: str) -> float:
    """F1 over the characters of the normalized strings, spaces removed."""
    prediction_chars = list("".join(normalize_answer(prediction).split()))
    ground_truth_chars = list("".join(normalize_answer(ground_truth).split()))
    num_same = sum((Counter(prediction_chars) & Counter(ground_truth_chars)).values())
    return overlap_f1(num_same, len(prediction_chars), len(ground_truth_chars))
