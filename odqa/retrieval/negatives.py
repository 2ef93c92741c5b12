"""Hard negatives: passages a retriever ranks high for a question that do not hold its answer.

One rule for every trainer that needs them (the reader's "no answer" passages, the dense retriever's
hard negatives): a question's top-``candidates`` passages by ``retriever`` (default bm25), skipping
its own gold passage and any passage that contains one of its answer texts.
"""
from __future__ import annotations

from typing import Sequence


def mine_hard_negatives(questions: Sequence[str], golds: Sequence[str], answers: Sequence[Sequence[str]],
                        passages: Sequence[str], per_question: int, retriever: str = "bm25",
                        candidates: int = 10) -> list[list[int]]:
    """For each question, up to ``per_question`` indices into ``passages`` (best ranked first).

    ``golds[i]`` is question i's own passage text; ``answers[i]`` its answer texts (blank ones ignored).
    """
    from odqa.retrieval.corpus import Corpus
    from odqa.retrieval.registry import get_retriever

    if per_question <= 0 or len(passages) < 2 or not questions:
        return [[] for _ in questions]
    corpus = Corpus.from_records({"id": str(i), "text": text} for i, text in enumerate(passages))
    index = get_retriever(retriever).index(corpus)
    hits = index.retrieve(list(questions), top_k=min(candidates + 1, len(corpus)))
    mined = []
    for gold, question_answers, question_hits in zip(golds, answers, hits):
        keys = [a for a in question_answers if a and a.strip()]
        chosen: list[int] = []
        for hit in question_hits:
            if len(chosen) == per_question:
                break
            text = corpus[hit.passage_id].text
            if text == gold or any(a in text for a in keys):
                continue
            chosen.append(int(corpus[hit.passage_id].id))
        mined.append(chosen)
    return mined
