"""Split long documents into overlapping passages, keeping passage -> document and char offsets.

Readers see a few hundred tokens at a time, and BM25 favours passages of similar length, so
long wiki articles are cut into windows. Each window keeps the title, records its source
``document_id`` and the ``start`` offset of its text in the document, so answers found in a
passage map back to the document.
"""
from __future__ import annotations

import re

from odqa.errors import ConfigError
from odqa.retrieval.corpus import Corpus, Passage

_WORD = re.compile(r"\S+")


def window_spans(text: str, size: int, overlap: int, unit: str = "chars") -> list[tuple[int, int]]:
    """(start, end) char spans of windows of ``size`` chars or words, consecutive ones sharing ``overlap``.

    Char windows end at a word boundary when one exists in the window's last fifth, so words are not cut.
    """
    if size <= 0 or overlap < 0 or overlap >= size:
        raise ConfigError(f"passage splitting needs size > overlap >= 0 (got size={size}, overlap={overlap}).")
    if unit == "words":
        words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        if not words:
            return []
        spans, i = [], 0
        while True:
            last = min(i + size, len(words)) - 1
            spans.append((words[i][0], words[last][1]))
            if last == len(words) - 1:
                return spans
            i = last + 1 - overlap
    if unit != "chars":
        raise ConfigError(f"unknown split unit {unit!r}; use 'chars' or 'words'.")
    spans, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            cut = text.rfind(" ", start + size * 4 // 5, end)
            end = cut if cut > start else end
        spans.append((start, end))
        if end == len(text):
            break
        start = max(end - overlap, start + 1)
        while start < end and text[start] == " ":
            start += 1
    return spans


def split_corpus(corpus: Corpus, size: int, overlap: int = 0, unit: str = "chars") -> Corpus:
    """Each document becomes passages ``<id>#<k>``; documents that fit in one window keep their id."""
    passages: list[Passage] = []
    for doc in corpus:
        spans = window_spans(doc.text, size, overlap, unit)
        if len(spans) <= 1:
            passages.append(doc)
            continue
        for k, (start, end) in enumerate(spans):
            passages.append(Passage(id=f"{doc.id}#{k}", text=doc.text[start:end], title=doc.title,
                                    document_id=doc.document_id, start=doc.start + start))
    return Corpus(passages, source=corpus.source, merged=dict(corpus.merged))
