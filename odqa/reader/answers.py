"""What the pipeline reads and what it returns: passages to read, and answers found in them."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PassageToRead:
    """One retrieved passage handed to the reader (``score``/``rank`` come from the retriever)."""

    passage_id: str
    text: str
    title: str = ""
    score: float = 0.0
    rank: int = 1
    document_id: str = ""  # the source document a split passage came from
    document_start: int = 0  # where ``text`` starts in that document's text


@dataclass
class Answer:
    """One answer span. ``start``/``end`` are character offsets into ``passage`` (the passage's own text),
    so ``passage[start:end] == text`` in both reading modes.

    ``reader_score`` is start + end logit (minus the window's no-answer score when the reader scores
    against null, the default); ``score`` adds ``retriever_weight`` x ``retriever_score``;
    ``probability`` is the softmax of ``score`` over the question's n-best list.
    ``no_answer_score`` is its window's no-answer logit sum minus the span's start + end logit (above 0: the
    reader prefers "no answer" in that window); ``no_answer`` is True on every answer of a question the
    reader abstains on (its best answer's ``no_answer_score`` is above the no-answer threshold): the spans
    are kept, but the reader's answer to the question is "no answer" (:mod:`odqa.reader.abstention`). For passages split
    from longer documents, ``document_id`` and ``document_start``/``document_end`` place the answer in
    the source document's text (equal to the passage's own offsets for an unsplit passage).
    """

    text: str
    score: float
    reader_score: float
    probability: float
    passage_id: str
    title: str
    start: int
    end: int
    retriever_score: float
    passage_rank: int
    passage: str = ""
    document_id: str = ""
    document_start: int = 0
    document_end: int = 0
    no_answer_score: float = 0.0
    no_answer: bool = False

    def to_dict(self, with_passage: bool = False) -> dict:
        """JSON-able form for nbest_predictions.json (the passage text only when asked: it is large)."""
        out = asdict(self)
        if not with_passage:
            out.pop("passage")
        return out
