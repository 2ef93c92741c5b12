"""faiss flat vs hnsw vs ivfpq at 1,000,000 vectors: build time, memory, queries/s, recall@10 against flat.

Synthetic vectors shaped like sentence embeddings (384 dimensions, L2-normalised, drawn around
``--clusters`` random centres, so there are neighbourhoods to find); the queries are fresh draws from
the same distribution. Each index is built by ``odqa.dense.vector_index.build_vector_index`` — the code
``odqa index --retriever dense --index_type ...`` runs — and searched by ``search_vectors`` (what the
dense retriever runs) with the search breadths in ``--ef_search`` (hnsw) and ``--nprobe`` (ivfpq, with
odqa's exact re-ranking of its candidates, and once without). Memory: the index's serialized size (what it holds) and
the growth of the process's resident memory once it is built (the vectors themselves are not counted:
they are already in memory).

  flock /tmp/odqa-cpu.lock python benchmarks/vector_index.py
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import machine, publish  # noqa: E402

from odqa.dense.vector_index import (VectorIndexConfig, build_vector_index, search_vectors,  # noqa: E402
                                     set_search_parameters)


def synthetic(n: int, dim: int, centres: np.ndarray, spread: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for i in range(0, n, 100_000):  # in slices: the float64 temporaries of 1M x 384 would double the memory
        m = min(100_000, n - i)
        block = centres[rng.integers(0, len(centres), m)] + spread * rng.standard_normal((m, dim), dtype=np.float32)
        out[i:i + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def rss_gb() -> float:
    """The process's resident memory now (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024 ** 3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=0.03, help="noise around each centre (per dimension)")
    parser.add_argument("--ef_search", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--nprobe", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()
    import faiss

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((args.clusters, args.dimension), dtype=np.float32) / np.sqrt(args.dimension)
    vectors = synthetic(args.vectors, args.dimension, centres, args.spread, 1)
    queries = synthetic(args.queries, args.dimension, centres, args.spread, 2)
    print(f"{len(vectors):,} vectors ready, RSS {rss_gb():.2f} GB", flush=True)

    rows, truth = [], None
    ivfpq_settings = [(n, VectorIndexConfig.rerank) for n in args.nprobe] + [(args.nprobe[0], 0)]
    for index_type, knob, values in (("flat", None, [None]), ("ivfpq", "nprobe, rerank", ivfpq_settings),
                                     ("hnsw", "ef_search", args.ef_search)):
        config = VectorIndexConfig(index_type=index_type)
        rss_before = rss_gb()
        start = time.perf_counter()
        index = build_vector_index(vectors, config)
        build = time.perf_counter() - start
        grown = rss_gb() - rss_before
        size = len(faiss.serialize_index(index)) / 1024 ** 3
        print(f"{index_type}: built in {build:.1f} s", flush=True)
        for value in values:
            if knob:
                for name, v in zip(knob.split(", "), value if isinstance(value, tuple) else (value,)):
                    setattr(config, name, v)
                set_search_parameters(index, config)
            search_vectors(index, vectors, queries[:10], 10, config)  # warm-up
            start = time.perf_counter()
            _, found = search_vectors(index, vectors, queries, 10, config)
            seconds = time.perf_counter() - start
            if truth is None:
                truth = found
            recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]) * 100
            name = index_type + (f", {knob} {', '.join(map(str, value)) if isinstance(value, tuple) else value}"
                                 if knob else "")
            rows.append(f"| {name} | {build:.0f} s | {size:.2f} GB | {max(grown, 0):.2f} GB | "
                        f"{len(queries) / seconds:,.0f} | {recall:.1f} |")
            print(rows[-1], flush=True)
        del index

    defaults = VectorIndexConfig()
    lines = [
        "## faiss flat vs hnsw vs ivfpq, 1,000,000 vectors (`benchmarks/vector_index.py`)", "",
        "Command: `flock /tmp/odqa-cpu.lock python benchmarks/vector_index.py`  ",
        f"Machine: {machine()}, faiss {faiss.__version__}.  ",
        f"Data: {args.vectors:,} synthetic {args.dimension}-dimensional L2-normalised vectors around {args.clusters:,} "
        f"random centres, {args.queries:,} fresh queries, inner product, top 10. hnsw: M {defaults.hnsw_m}, "
        f"efConstruction {defaults.ef_construction}; ivfpq: nlist {defaults.nlist}, {defaults.pq_m} bytes per vector "
        "(odqa's defaults; `rerank` r: the top r x 10 of the compressed index re-scored exactly with the stored vectors, "
        "0: PQ scores only). Recall@10 is the share of flat's (exact) top 10 found; queries/s: one batch of all "
        "queries on all threads.", "",
        "| index | build | index size | resident memory added | queries/s | recall@10 vs flat |",
        "|---|---:|---:|---:|---:|---:|",
        *rows, "",
    ]
    text = "\n".join(lines)
    publish("vector_index", text, args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
