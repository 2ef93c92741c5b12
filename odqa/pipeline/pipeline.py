"""ODQAPipeline: any retriever composed with any reader, for notebooks and for `odqa infer`.

    from odqa import ODQAPipeline
    pipe = ODQAPipeline.from_pretrained("models/sample_bm25")   # the shipped Korean reader, e5-small-korquad
    pipe = ODQAPipeline.from_pretrained("models/my_reader", "models/sample_bm25")   # a reader you trained
    pipe("경복궁이 처음 지어진 해는?", top_k=5)          # [Answer(text=..., score=..., passage_id=...), ...]
    pipe(["질문 1", "질문 2"], top_k=5)                # one list of answers per question, read in one batch
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

from odqa.errors import ConfigError
from odqa.reader.abstention import abstains
from odqa.reader.answers import Answer, PassageToRead
from odqa.reader.extractive import DEFAULT_TOP_K, ExtractiveReader, ReadOptions
from odqa.reader.processor import WindowConfig
from odqa.retrieval.base import Hit
from odqa.utils.progress import wants_progress


@dataclass
class PipelineResult:
    """Everything one run produced: the retrieval table, the answers, and where the time went."""

    questions: list[dict[str, str]]
    hits: list[list[Hit]]  # per question, its retrieved passages (best first)
    answers: list[list[Answer]]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def table(self):
        """The retrieval as a DataFrame (id, question, passage_ids, scores, contexts), built when asked:
        what retrieved.csv holds and the ``csv`` retriever replays."""
        from odqa.retrieval.table import hits_table

        return hits_table(self.questions, self.hits)

    def predictions(self) -> dict[str, str]:
        """{question id: best answer text} ("" when nothing was found or the reader abstained: SQuAD 2.0's
        convention)."""
        return {q["id"]: ("" if abstains(a) else a[0].text) for q, a in zip(self.questions, self.answers)}

    def no_answer_scores(self) -> dict[str, float]:
        """{question id: the best answer's no_answer_score} (+inf when nothing was found): what
        ``odqa choose-threshold`` and ``odqa evaluate --metric squad_v2`` read."""
        import math

        return {q["id"]: (a[0].no_answer_score if a else math.inf) for q, a in zip(self.questions, self.answers)}

    def nbest(self) -> dict[str, list[dict]]:
        """{question id: n-best answers with passage ids, offsets and scores}."""
        return {q["id"]: [x.to_dict() for x in a] for q, a in zip(self.questions, self.answers)}


def hits_to_read(found: Sequence[Hit], score_ratio: float = 0.0) -> list[Hit]:
    """A question's hits that are read: all of them, or with ``score_ratio`` > 0 those scoring at least that
    share of its top score (the top one always)."""
    top = found[0].score if found else 0.0
    out = []
    for hit in found:
        if hit.rank > 1 and score_ratio > 0 and top > 0 and hit.score < score_ratio * top:
            break
        out.append(hit)
    return out


def passages_from_hits(hits: Sequence[Sequence[Hit]], score_ratio: float = 0.0) -> list[list[PassageToRead]]:
    """The passages each question will be read against: its hits, with the passage each carries.

    ``score_ratio`` > 0 is a passage-level cut: a passage is read only if its retriever score is at
    least that share of the question's top score (fewer windows to read; the top passage always stays).
    """
    out = []
    for found in hits:
        group = []
        for hit in hits_to_read(found, score_ratio):
            p = hit.passage
            if p is None:
                raise ConfigError(f"hit {hit.passage_id!r} carries no passage; retrieve with "
                                  "odqa.retrieval.table.retrieve_hits (it attaches them).")
            group.append(PassageToRead(passage_id=str(hit.passage_id), text=p.text, title=p.title,
                                       score=float(hit.score), rank=hit.rank, document_id=p.document_id or p.id,
                                       document_start=p.start))
        out.append(group)
    return out


def passages_from_table(table, corpus=None, score_ratio: float = 0.0) -> list[list[PassageToRead]]:
    """:func:`passages_from_hits` for a retrieval table read from disk (retrieved.csv): each row's texts, with
    titles and document offsets from ``corpus`` when it has the passage."""
    from odqa.retrieval.corpus import Passage

    def passage(pid: str, text: str) -> Passage:
        source = corpus[pid] if corpus is not None and pid in corpus else None
        if source is None:
            return Passage(pid, text)
        return Passage(pid, text, source.title, source.document_id or source.id, source.start)

    hits = [[Hit(str(pid), float(score), rank, passage=passage(str(pid), text))
             for rank, (pid, score, text) in enumerate(zip(ids, scores, texts), 1)]
            for ids, scores, texts in zip(table["passage_ids"], table["scores"], table["contexts"])]
    return passages_from_hits(hits, score_ratio)


class ODQAPipeline:
    """Retrieve top-k passages per question, read them, return the best answers across passages."""

    def __init__(self, retriever, reader: ExtractiveReader | str, read_options: ReadOptions | None = None,
                 score_ratio: float = 0.0) -> None:
        if isinstance(reader, str):
            reader = ExtractiveReader.from_pretrained(reader)
        if getattr(retriever, "corpus", None) is None:
            raise ConfigError("the retriever has no index: call retriever.index(corpus) or load a saved index first.")
        self.retriever = retriever
        self.reader = reader
        self.read_options = read_options or ReadOptions(add_title=self.reader.trained_with_titles,
                                                        no_answer_threshold=self.reader.no_answer_threshold)
        self.read_options.check()
        self.score_ratio = score_ratio

    @classmethod
    def from_pretrained(cls, reader_path: str | None = None, index_dir: str | None = None,
                        window: WindowConfig | None = None, read_options: ReadOptions | None = None,
                        batch_size: int = 32, quantize: str | None = None, score_ratio: float = 0.0,
                        show_progress: bool | None = None, mmap: bool = False) -> "ODQAPipeline":
        """A reader plus a saved index directory (any retriever; ``mmap``: see load_retriever).

        ``from_pretrained(index_dir)`` (one argument, an index) or ``from_pretrained(index_dir=...)`` reads
        with the shipped Korean reader (``e5-small-korquad``); ``from_pretrained(reader, index_dir)`` with yours.
        """
        import os

        from odqa.offline import SHIPPED_READER
        from odqa.retrieval.base import META_FILE
        from odqa.retrieval.registry import load_retriever

        if index_dir is None:
            if reader_path is None or not os.path.isfile(os.path.join(str(reader_path), META_FILE)):
                raise ConfigError(f"ODQAPipeline.from_pretrained needs an index directory (built by `odqa index`): "
                                  f"from_pretrained(index_dir) or from_pretrained(reader, index_dir); got "
                                  f"{reader_path!r}, which holds no {META_FILE}.")
            reader_path, index_dir = None, reader_path
        reader_path = reader_path or SHIPPED_READER

        retriever = load_retriever(index_dir, mmap=mmap)
        reader = ExtractiveReader.from_pretrained(reader_path, window=window, batch_size=batch_size,
                                                  quantize=quantize, show_progress=show_progress)
        return cls(retriever, reader, read_options, score_ratio)

    def run(self, questions: Sequence[dict[str, str]], top_k: int = DEFAULT_TOP_K,
            show_progress: bool | None = None) -> PipelineResult:
        """Questions ``[{id, question}]`` -> retrieval table + n-best answers, all questions batched.

        ``show_progress``: True always, False never, None (default) only for long work (many questions).
        """
        from odqa.retrieval.table import retrieve_hits

        if top_k < 1:
            raise ConfigError(f"top_k must be at least 1 (got {top_k}).")
        questions = list(questions)
        for q in questions:
            text = q.get("question") if isinstance(q, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise ConfigError(f"question {q.get('id') if isinstance(q, dict) else q!r}: the question text is "
                                  f"{'empty' if isinstance(text, str) else 'missing'}; give a non-empty string.")
        timings: dict[str, float] = {}
        start = time.perf_counter()
        hits = retrieve_hits(self.retriever, questions, top_k,
                             show_progress=wants_progress(show_progress, len(questions)))
        timings["retrieve"] = time.perf_counter() - start
        passages = passages_from_hits(hits, self.score_ratio)
        answers = self.reader.read([q["question"] for q in questions], passages, self.read_options, timings)
        timings["total"] = time.perf_counter() - start
        return PipelineResult(questions, hits, answers, timings)

    def __call__(self, questions: str | Sequence[str], top_k: int = DEFAULT_TOP_K, num_answers: int = 5
                 ) -> list[Answer] | list[list[Answer]]:
        """One question -> its best ``num_answers`` answers; a list of questions -> one such list each."""
        single = isinstance(questions, str)
        if not single and not (isinstance(questions, (list, tuple)) and all(isinstance(q, str) for q in questions)):
            kind = type(questions).__name__ if not isinstance(questions, (list, tuple)) else \
                f"a list holding {type(next(q for q in questions if not isinstance(q, str))).__name__}"
            raise ConfigError(f"ODQAPipeline expects a question string or a list of strings, got {kind}.")
        texts = [questions] if single else list(questions)
        result = self.run([{"id": str(i), "question": q} for i, q in enumerate(texts)], top_k,
                          show_progress=self.reader.show_progress)
        answers = [a[:num_answers] for a in result.answers]
        return answers[0] if single else answers
