"""Fuse two retrievers (e.g. BM25 and dense, or two tokenizations) over the same corpus."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from odqa.errors import ConfigError, IndexLoadError
from odqa.retrieval.base import CORPUS_FILE, Hit, IndexedRetriever, read_index_meta
from odqa.retrieval.corpus import Corpus
from odqa.retrieval.fusion import reciprocal_rank_fusion, weighted_sum_fusion, zscore_fusion
from odqa.retrieval.tokenizers import DEFAULT_TOKENIZER

FUSIONS = ("rrf", "weighted", "zscore")
# the default hybrid, chosen on the even (training) articles of the KorQuAD half by MRR@20
# (benchmarks/hybrid_choice.py): on held-out articles it ties bm25 alone; sparse + sparse adds little
DEFAULT_HYBRID_PARTS = ("bm25", "tfidf")
DEFAULT_HYBRID_TOKENIZERS = (DEFAULT_TOKENIZER, "kiwi")
DEFAULT_FUSION = "weighted"
DEFAULT_FUSION_WEIGHT = 0.9
PARTS = ("first", "second")


def check_fusion(fusion: str) -> None:
    if fusion not in FUSIONS:
        raise ConfigError(f"unknown fusion {fusion!r}; choose one of {', '.join(FUSIONS)}.")


def fuse_rankings(first: list[list[Hit]], second: list[list[Hit]], top_k: int, fusion: str = DEFAULT_FUSION,
                  weight: float = DEFAULT_FUSION_WEIGHT, rrf_k: float = 60.0) -> list[list[Hit]]:
    """Per query, the fused top ``top_k`` of two parts' rankings; ``weight`` is the first part's share.

    A pure function of the rankings, so a benchmark can try many fusions on rankings retrieved once.
    """
    check_fusion(fusion)
    weights = [weight, 1.0 - weight]
    fused = []
    for a, b in zip(first, second):
        if fusion == "rrf":
            fused.append(reciprocal_rank_fusion([a, b], k=rrf_k, weights=[2 * w for w in weights])[:top_k])
        elif fusion == "zscore":
            fused.append(zscore_fusion([a, b], weights)[:top_k])
        else:
            fused.append(weighted_sum_fusion([a, b], weights)[:top_k])
    return fused


class HybridRetriever(IndexedRetriever):
    """``fusion='rrf'`` (reciprocal-rank fusion), ``'weighted'`` (min-max weighted sum) or ``'zscore'``
    (weighted sum of z-scores).

    Each part returns ``depth`` candidates; ``weight`` is the first part's share (second gets 1 - weight).
    """

    name: ClassVar[str] = "hybrid"

    def __init__(self, first: Any, second: Any, fusion: str = DEFAULT_FUSION, weight: float = DEFAULT_FUSION_WEIGHT,
                 rrf_k: float = 60.0, depth: int = 100) -> None:
        check_fusion(fusion)
        if not 0.0 <= weight <= 1.0:
            raise ConfigError(f"hybrid weight must be within [0, 1] (got {weight}).")
        self.parts = [first, second]
        self.fusion, self.weight, self.rrf_k, self.depth = fusion, weight, rrf_k, depth
        self.corpus: Corpus | None = getattr(first, "corpus", None)

    def params(self) -> dict[str, Any]:
        return {"fusion": self.fusion, "weight": self.weight, "rrf_k": self.rrf_k, "depth": self.depth,
                "parts": [p.name for p in self.parts]}

    def index(self, corpus: Corpus) -> "HybridRetriever":
        for part in self.parts:
            part.index(corpus)
        self.corpus = corpus
        return self

    def retrieve(self, queries: list[str], top_k: int) -> list[list[Hit]]:
        self._require_index()
        depth = max(top_k, self.depth)
        first, second = (part.retrieve(queries, depth) for part in self.parts)
        return self.fuse(first, second, top_k)

    def fuse(self, first: list[list[Hit]], second: list[list[Hit]], top_k: int) -> list[list[Hit]]:
        """The fused top ``top_k`` of each query from its two parts' rankings (:func:`fuse_rankings`)."""
        return fuse_rankings(first, second, top_k, self.fusion, self.weight, self.rrf_k)

    def _save_arrays(self, directory: Path) -> None:
        for label, part in zip(PARTS, self.parts):
            part.save_into(directory / label)

    @classmethod
    def load(cls, directory: str | os.PathLike, mmap: bool = False) -> "HybridRetriever":
        from odqa.retrieval.registry import load_retriever

        directory = Path(directory)
        meta = read_index_meta(directory)
        if meta["retriever"] != cls.name:
            raise IndexLoadError(f"{directory}: a {meta['retriever']!r} index, not a hybrid one.")
        first, second = (load_retriever(directory / label, mmap=mmap) for label in PARTS)
        retriever = cls(first, second, fusion=meta["fusion"], weight=meta["weight"], rrf_k=meta["rrf_k"],
                        depth=meta["depth"])
        retriever.corpus = Corpus.load_jsonl(directory / CORPUS_FILE)
        return retriever
