"""BM25 speed: odqa `bm25` (bm25s + numba) against rank-bm25 on a large synthetic Korean corpus.

    flock /tmp/odqa-cpu.lock python benchmarks/retrieval_speed.py                       # 200,000 passages
    flock /tmp/odqa-cpu.lock python benchmarks/retrieval_speed.py --passages 1000000 \\
        --tokenizer bigram --rank-bm25-queries 0 --kiwi-sample 0                        # the 1M memory check

Passages are 3-8 sentences re-sampled (seeded) from the KorQuAD dev half; queries are its 3,316
questions. Both engines get the same tokens and the same variant (okapi, k1 1.5, b 0.75,
epsilon 0.25 = rank-bm25 defaults). Tokenization is timed apart from retrieval. rank-bm25 is
timed on a sample of queries and its per-query time extrapolated. Top-10 lists are compared
up to exact score ties. Peak memory is the process's maximum RSS.
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
logging.getLogger("bm25s").setLevel(logging.WARNING)

from odqa.retrieval.bm25 import BM25Retriever  # noqa: E402
from odqa.retrieval.corpus import Corpus, iter_mrc_examples  # noqa: E402
from odqa.retrieval.tokenizers import make_tokenizer  # noqa: E402
from odqa.utils.io import read_json  # noqa: E402
from report import publish  # noqa: E402

DATASET = Path(__file__).resolve().parents[2] / "shared" / "data" / "korquad" / "KorQuAD_v1.0_dev_half.json"
PARAMS = {"variant": "okapi", "k1": 1.5, "b": 0.75, "epsilon": 0.25, "title_weight": 0}


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def synthetic_corpus(examples, n: int, seed: int = 0) -> Corpus:
    contexts = list(dict.fromkeys(e["context"] for e in examples))
    sentences = [s for c in contexts for s in re.split(r"(?<=[.!?])\s+", c) if len(s) > 10]
    rng = random.Random(seed)

    def records():  # n distinct texts (Corpus would merge a repeated one)
        seen: set[str] = set()
        while len(seen) < n:
            text = " ".join(rng.choices(sentences, k=rng.randint(3, 8)))
            if text not in seen:
                seen.add(text)
                yield {"id": str(len(seen) - 1), "text": text}

    return Corpus.from_records(records(), source=f"synthetic-{n}")


def same_top_k(ours, ref_scores: np.ndarray, k: int, tol: float = 1e-4) -> bool:
    """Our top-k equals rank-bm25's up to exact ties: same score sequence, same ids above the tie score."""
    order = np.argsort(-ref_scores, kind="stable")[:k]
    ref_top = ref_scores[order]
    our_scores = np.array([h.score for h in ours[:k]])
    if not np.allclose(our_scores, ref_top, atol=tol, rtol=1e-5):
        return False
    boundary = ref_top[-1]
    strict_ref = {int(i) for i in order if ref_scores[i] > boundary + tol}
    strict_ours = {int(h.passage_id) for h in ours[:k] if h.score > boundary + tol}
    return strict_ref == strict_ours


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=str(DATASET))
    ap.add_argument("--passages", type=int, default=200_000)
    ap.add_argument("--tokenizer", default="bigram", help="tokenizer of the timed index (default bigram)")
    ap.add_argument("--rank-bm25-queries", type=int, default=20, help="0 skips rank-bm25")
    ap.add_argument("--kiwi-sample", type=int, default=5000, help="passages to time Kiwi tokenization on (0 = skip)")
    ap.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = ap.parse_args()

    examples = [e for e in iter_mrc_examples(read_json(args.dataset)) if e["question"]]
    queries = [e["question"] for e in examples]
    t = time.perf_counter()
    corpus = synthetic_corpus(examples, args.passages)
    print(f"corpus: {len(corpus):,} passages in {time.perf_counter() - t:.1f}s", flush=True)
    out = [f"## BM25 speed and memory, {args.passages:,} passages (`benchmarks/retrieval_speed.py`)", "",
           f"Command: `flock /tmp/odqa-cpu.lock python benchmarks/{Path(__file__).name} --passages {args.passages} --tokenizer {args.tokenizer} "
           f"--rank-bm25-queries {args.rank_bm25_queries} --kiwi-sample {args.kiwi_sample}`; machine: "
           f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}.", "",
           f"- corpus: {len(corpus):,} passages (re-sampled KorQuAD sentences, mean "
           f"{np.mean([len(p.text) for p in corpus.passages[:10000]]):.0f} chars), {len(queries):,} queries"]

    if args.kiwi_sample:
        sample = corpus.texts[:args.kiwi_sample]
        t = time.perf_counter()
        make_tokenizer("kiwi").tokenize(sample, show_progress=True)
        rate = len(sample) / (time.perf_counter() - t)
        out.append(f"- Kiwi tokenization (all {os.cpu_count()} cores, Kiwi worker threads): {rate:,.0f} passages/s "
                   f"-> {len(corpus) / rate / 60:.1f} min for the whole corpus (extrapolated from {len(sample):,})")

    tokenizer = make_tokenizer(args.tokenizer)
    ours = BM25Retriever(tokenizer=args.tokenizer, **PARAMS)
    query_tokens = tokenizer.tokenize(queries)
    if args.rank_bm25_queries:  # rank-bm25 needs the token lists: tokenize once, give both engines the same tokens
        t = time.perf_counter()
        corpus_tokens = tokenizer.tokenize(corpus.texts, show_progress=True)
        out.append(f"- `{args.tokenizer}` tokenization of the corpus: {time.perf_counter() - t:.1f}s "
                   f"({sum(map(len, corpus_tokens)) / len(corpus_tokens):.0f} tokens/passage)")
        rss_before = peak_rss_gb()
        t = time.perf_counter()
        ours.index_tokens(corpus, corpus_tokens)
        out.append(f"- odqa bm25 index build (tokens given): {time.perf_counter() - t:.1f}s; peak RSS so far "
                   f"{peak_rss_gb():.2f} GB (after tokenization {rss_before:.2f} GB)")
    else:  # the path `odqa index` takes: chunked tokenization straight into 4-byte ids, then the build
        ours.show_progress = True
        rss_before = peak_rss_gb()
        t = time.perf_counter()
        ours.index(corpus)
        ours.show_progress = False
        out.append(f"- odqa bm25 `index()` (`{args.tokenizer}` tokenization + build, as `odqa index` runs it): "
                   f"{time.perf_counter() - t:.1f}s; peak RSS {peak_rss_gb():.2f} GB (before indexing "
                   f"{rss_before:.2f} GB)")
    ours.retrieve_tokens(query_tokens[:300], 10)  # JIT warm-up (serial and parallel kernels)
    ours.retrieve_tokens(query_tokens[:2], 10)
    qps = {}
    for threads in (1, os.cpu_count() or 1):
        ours.n_threads = threads
        t = time.perf_counter()
        our_hits = ours.retrieve_tokens(query_tokens, 10)
        qps[threads] = len(queries) / (time.perf_counter() - t)
        out.append(f"- odqa bm25 top-10, {threads} thread(s): {qps[threads]:,.0f} queries/s")

    if args.rank_bm25_queries:
        import rank_bm25

        t = time.perf_counter()
        ref = rank_bm25.BM25Okapi(corpus_tokens, k1=PARAMS["k1"], b=PARAMS["b"], epsilon=PARAMS["epsilon"])
        out.append(f"- rank-bm25 BM25Okapi build: {time.perf_counter() - t:.1f}s")
        sample_ids = list(range(0, len(queries), max(1, len(queries) // args.rank_bm25_queries)))[:args.rank_bm25_queries]
        t = time.perf_counter()
        ref_scores = [ref.get_scores(query_tokens[i]) for i in sample_ids]
        ref_qps = len(sample_ids) / (time.perf_counter() - t)
        identical = sum(same_top_k(our_hits[i], s, 10) for i, s in zip(sample_ids, ref_scores))
        out.append(f"- rank-bm25 get_scores + top-10 ({len(sample_ids)} queries timed): {ref_qps:.2f} queries/s")
        out.append(f"- **speed-up: {qps[1] / ref_qps:,.0f}x single-thread, {qps[max(qps)] / ref_qps:,.0f}x with "
                   f"{max(qps)} threads**; identical top-10 (up to exact ties): {identical}/{len(sample_ids)} queries")
    out.append(f"- peak RSS of the whole run: {peak_rss_gb():.2f} GB")
    text = "\n".join(out)
    publish(f"retrieval_speed_{args.passages}", text, args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
