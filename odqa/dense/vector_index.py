"""faiss indexes over passage vectors (inner product): exact ``flat`` or approximate ``hnsw`` / ``ivfpq``.

The type and its parameters are part of the index directory's meta and are checked on load; the raw
vectors are always kept too (``vectors.npy``, no pickle), so a flat index is rebuilt from them and an
approximate one can be re-made with other parameters without encoding the corpus again.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from odqa.errors import ConfigError, IndexLoadError

INDEX_TYPES = ("flat", "hnsw", "ivfpq")
VECTORS_FILE = "vectors.npy"
FAISS_FILE = "vectors.faiss"


@dataclass
class VectorIndexConfig:
    """``flat``: exact search. ``hnsw``: graph search (``hnsw_m`` links, ``ef_search`` breadth).
    ``ivfpq``: ``nlist`` clusters (``nprobe`` searched), vectors product-quantized into ``pq_m`` bytes:
    for corpora whose float vectors outgrow memory. Its ``rerank`` x k candidates are re-scored exactly with
    the stored vectors (memory-mapped, read from disk only for those rows); 0 keeps the quantized scores."""

    index_type: str = "flat"
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 128
    nlist: int = 1024
    nprobe: int = 32
    pq_m: int = 48
    rerank: int = 10

    def check(self, dimension: int | None = None) -> None:
        if self.index_type not in INDEX_TYPES:
            raise ConfigError(f"unknown index type {self.index_type!r}; choose one of {', '.join(INDEX_TYPES)}.")
        if self.index_type == "ivfpq" and dimension is not None and dimension % self.pq_m:
            raise ConfigError(f"ivfpq: pq_m ({self.pq_m}) must divide the vector dimension ({dimension}); "
                              "e.g. 48 or 96 for 384.")


def build_vector_index(vectors: np.ndarray, config: VectorIndexConfig) -> Any:
    """A faiss index holding ``vectors`` (float32 ``[n, dim]``), searched by inner product."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    config.check(dim)
    if config.index_type == "flat":
        index = faiss.IndexFlatIP(dim)
    elif config.index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.ef_construction
    else:
        if n < 39 * config.nlist:
            raise ConfigError(f"ivfpq with nlist {config.nlist} needs at least {39 * config.nlist} passages to train "
                              f"its clusters (got {n}); lower --nlist or use --index_type flat/hnsw.")
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFPQ(quantizer, dim, config.nlist, config.pq_m, 8, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
    index.add(vectors)
    set_search_parameters(index, config)
    return index


def set_search_parameters(index: Any, config: VectorIndexConfig) -> None:
    import faiss

    if config.index_type == "hnsw":
        index.hnsw.efSearch = config.ef_search
    elif config.index_type == "ivfpq":
        faiss.extract_index_ivf(index).nprobe = config.nprobe


def search_vectors(index: Any, vectors: np.ndarray, queries: np.ndarray, k: int, config: VectorIndexConfig
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of the top ``k`` per query, best first; rows of -1 where fewer were found.

    ivfpq with ``rerank``: ``rerank * k`` candidates from the compressed index, re-scored by exact inner products
    with ``vectors`` (PQ scores are too coarse to order close neighbours; see BENCHMARKS.md, faiss at 1M)."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if config.index_type != "ivfpq" or config.rerank <= 0:
        return index.search(queries, k)
    _, candidates = index.search(queries, k * config.rerank)
    scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    rows = np.full((len(queries), k), -1, dtype=np.int64)
    for i, (query, found) in enumerate(zip(queries, candidates)):
        found = np.sort(found[found >= 0])  # sorted rows: sequential reads from a memory map
        exact = np.asarray(vectors[found] @ query, dtype=np.float32)
        best = np.argsort(-exact, kind="stable")[:k]
        scores[i, :len(best)], rows[i, :len(best)] = exact[best], found[best]
    return scores, rows


def save_vector_index(directory: Path, vectors: np.ndarray, index: Any, config: VectorIndexConfig) -> None:
    """``vectors.npy`` always, ``vectors.faiss`` for the approximate types."""
    import faiss

    np.save(directory / VECTORS_FILE, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
    if config.index_type != "flat":
        faiss.write_index(index, str(directory / FAISS_FILE))


def load_vector_index(directory: Path, config: VectorIndexConfig, dimension: int, num_passages: int
                      ) -> tuple[np.ndarray, Any]:
    """Vectors and faiss index, checked against what the index meta says (count, dimension)."""
    import faiss

    # an approximate index searches without them: memory-map the vectors (ivfpq re-ranks a few rows from disk)
    vectors = np.load(directory / VECTORS_FILE, allow_pickle=False,
                      mmap_mode=None if config.index_type == "flat" else "r")
    if vectors.ndim != 2 or vectors.shape != (num_passages, dimension):
        raise IndexLoadError(f"{directory / VECTORS_FILE}: shape {vectors.shape}, expected ({num_passages}, "
                             f"{dimension}); the index is corrupt, rebuild it with `odqa index`.")
    if config.index_type == "flat":
        return vectors, build_vector_index(vectors, config)
    index = faiss.read_index(str(directory / FAISS_FILE))
    if index.ntotal != num_passages or index.d != dimension:
        raise IndexLoadError(f"{directory / FAISS_FILE}: {index.ntotal} vectors of dimension {index.d}, expected "
                             f"{num_passages} of {dimension}; rebuild the index with `odqa index`.")
    set_search_parameters(index, config)
    return vectors, index
