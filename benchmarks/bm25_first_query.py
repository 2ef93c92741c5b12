"""What a new process pays before its first BM25 answer: cold (numba compiles bm25s's kernels) vs warm
(odqa enabled numba's on-disk cache, so a second process loads them compiled).

Builds a bm25 index of the KorQuAD half (or data/sample without ../shared) once, then starts fresh
Python processes that load it and time: the first query, then a first batch of 300 queries (bm25s
runs batches on its parallel kernel, a second compilation). Each measurement starts a process with an
empty ``NUMBA_CACHE_DIR`` (cold) and then one more on the cache the cold one wrote (warm).

  flock /tmp/odqa-cpu.lock python benchmarks/bm25_first_query.py
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import KORQUAD, REPO, machine, publish  # noqa: E402

CHILD = r"""
import json, sys, time
start = time.perf_counter()
from odqa.retrieval.registry import load_retriever
retriever = load_retriever(sys.argv[1])
questions = json.loads(sys.argv[2])
loaded = time.perf_counter()
retriever.retrieve(questions[:1], 10)
first = time.perf_counter()
retriever.retrieve(questions, 10)
batch = time.perf_counter()
print(json.dumps({"load": loaded - start, "first_query": first - loaded, "first_batch": batch - first}))
"""


def run_child(index: Path, questions: list[str], cache_dir: Path) -> dict[str, float]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(index), json.dumps(questions, ensure_ascii=False)],
                         env=env, cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(KORQUAD))
    parser.add_argument("--batch", type=int, default=300, help="questions in the first batch")
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()

    from odqa.retrieval import get_retriever, load_corpus
    from odqa.data.loading import read_mrc_rows

    dataset = args.dataset if Path(args.dataset).exists() else str(REPO / "data" / "sample" / "train.json")
    questions = [row["question"] for row in read_mrc_rows(dataset)][:args.batch]
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "bm25"
        retriever = get_retriever("bm25").index(load_corpus(dataset))
        retriever.save(index)
        cache = Path(tmp) / "numba_cache"
        cold = run_child(index, questions, cache)
        warm = run_child(index, questions, cache)
    rows = [("cold: numba compiles (every new process before this change)", cold),
            ("warm: kernels loaded from the on-disk cache", warm)]
    lines = ["## A new process's first BM25 answer (`benchmarks/bm25_first_query.py`)", "",
             f"Command: `flock /tmp/odqa-cpu.lock python benchmarks/bm25_first_query.py`; machine: {machine()}.  ",
             f"Index: bm25 (kiwi+bigram) over the {len(retriever.corpus)} passages of `{Path(dataset).name}`; each row "
             f"is a fresh Python process that loads it, answers one question, then a batch of {len(questions)} "
             "(bm25s's parallel kernel).", "",
             "| process | load index (s) | first query (s) | first batch (s) |", "|---|---:|---:|---:|"]
    lines += [f"| {label} | {r['load']:.2f} | {r['first_query']:.2f} | {r['first_batch']:.2f} |" for label, r in rows]
    lines += ["", f"First query {cold['first_query'] / max(warm['first_query'], 1e-9):.0f}x faster and first batch "
                  f"{cold['first_batch'] / max(warm['first_batch'], 1e-9):.0f}x faster once the cache exists "
                  "(it is written by the first process that retrieves, beside bm25s or in `$NUMBA_CACHE_DIR`)."]
    text = "\n".join(lines)
    publish("bm25_first_query", text, args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
