"""Answer boundaries inside tokens: Korean particles glued to the answer, and whitespace.

A subword vocabulary trained on raw Korean glues particles to the word before them (정육점을 is
``▁정육 점을``; 대통령이 is one piece), so the gold answer 정육점 ends *inside* the token 점을 and a
reader that can only end at token boundaries can never give it: with multilingual-e5-small ~11% of
KorQuAD answers are out of reach that way (``odqa check-data``). The fix lives here, in
post-processing, for any tokenizer: when a candidate span's last token carries trailing particles
(Kiwi tags ``J*``) or a copula with its endings (``VCP`` + ``E*``: 대통령이다), the span ends at the
morpheme boundary inside that token instead. Cuts happen only inside the span's last token, so the
reader still chooses the longer span whenever it ends on a later token. The same function serves
evaluation (``QATrainer``, ``check-data``) and inference (``ExtractiveReader``).

SentencePiece offsets also include the space before a word (``▁세계`` covers `` 세계``): spans are
trimmed of surrounding whitespace. A bracket or quote at an edge of a span whose partner is not in the
span (``1698년)``, ``(Basin``) is trimmed too: no KorQuAD gold answer has one.
"""
from __future__ import annotations

import re
from functools import lru_cache

_HANGUL = re.compile("[\uac00-\ud7a3]")


@lru_cache(maxsize=200_000)
def trailing_particles_start(word: str) -> int | None:
    """Where the trailing particles / copula of one eojeol begin (a char index in ``word``), or None.

    >>> trailing_particles_start("정육점을"), trailing_particles_start("대통령이다"), trailing_particles_start("3년간")
    (3, 3, None)
    """
    if not _HANGUL.search(word):
        return None
    from odqa.utils.kiwi import get_kiwi

    morphemes = get_kiwi().tokenize(word)
    cut, i = None, len(morphemes) - 1
    j = i
    while j > 0 and morphemes[j].tag.startswith("E"):  # endings count only after a copula: 이었다
        j -= 1
    if j > 0 and morphemes[j].tag == "VCP":
        cut, i = morphemes[j].start, j - 1
    while i > 0 and morphemes[i].tag.startswith("J"):
        cut, i = morphemes[i].start, i - 1
    if cut is None or cut <= 0 or morphemes[i].start + morphemes[i].len > cut:
        return None
    return cut


def strip_whitespace(context: str, start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` without leading or trailing whitespace (empty spans stay empty)."""
    while start < end and context[start].isspace():
        start += 1
    while end > start and context[end - 1].isspace():
        end -= 1
    return start, end


_OPENING = {"(": ")", "[": "]", "{": "}", "「": "」", "『": "』", "《": "》", "〈": "〉", "【": "】", "“": "”", "‘": "’"}
_CLOSING = {close: open_ for open_, close in _OPENING.items()}
_SYMMETRIC = {'"', "'"}


def trim_unbalanced_edges(text: str, start: int, end: int) -> tuple[int, int]:
    """``[start, end)`` without whitespace, nor brackets/quotes at its edges whose partner is not inside the span."""
    start, end = strip_whitespace(text, start, end)
    changed = True
    while changed and start < end:
        changed = False
        span = text[start:end]
        first, last = span[0], span[-1]
        if (first in _OPENING and span.count(_OPENING[first]) < span.count(first)) or \
                (first in _SYMMETRIC and span.count(first) % 2):
            start, changed = start + 1, True
        elif (last in _CLOSING and span.count(_CLOSING[last]) < span.count(last)) or \
                (last in _SYMMETRIC and span.count(last) % 2):
            end, changed = end - 1, True
        if changed:
            start, end = strip_whitespace(text, start, end)
    return start, end


def refine_span(context: str, start: int, end: int, last_token_start: int, morpheme_boundaries: bool = True
                ) -> tuple[int, int]:
    """The answer span a reader's token span stands for: whitespace and unpartnered brackets/quotes trimmed,
    trailing particles cut off.

    ``last_token_start`` is where the span's last token begins: a particle is cut only if the cut
    falls inside that token (after its first character), never before it.
    """
    start, end = trim_unbalanced_edges(context, start, end)
    if not morpheme_boundaries or end <= start:
        return start, end
    space = max(context.rfind(" ", start, end), context.rfind("\n", start, end))
    word_start = space + 1 if space >= 0 else start
    cut = trailing_particles_start(context[word_start:end])
    if cut is None:
        return start, end
    cut += word_start
    if cut <= max(last_token_start, start):
        return start, end
    return trim_unbalanced_edges(context, start, cut)
