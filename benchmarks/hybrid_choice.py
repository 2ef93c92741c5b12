"""Which hybrid, if any, beats plain bm25? Chosen on the even articles, checked on the odd ones.

The KorQuAD half split by article: every (second part, fusion, weight) combination with the default
bm25 as first part is scored on the EVEN articles (MRR@20, then R@1); the best one and the old default
(bm25 + tfidf, rrf, 0.5) are then measured on the ODD articles next to bm25 alone. Each part retrieves
once per question set; the fusions are pure functions of those rankings (``odqa.retrieval.hybrid.fuse_rankings``).

  flock /tmp/odqa-cpu.lock python benchmarks/hybrid_choice.py
"""
from __future__ import annotations

import argparse
import itertools
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
logging.getLogger("bm25s").setLevel(logging.WARNING)

from report import KORQUAD, machine, publish  # noqa: E402
from retrieval_quality import subset  # noqa: E402

from odqa.retrieval.bm25 import BM25Retriever  # noqa: E402
from odqa.retrieval.evaluation import retrieval_metrics  # noqa: E402
from odqa.retrieval.hybrid import FUSIONS, fuse_rankings  # noqa: E402
from odqa.retrieval.tfidf import TfidfRetriever  # noqa: E402
from odqa.utils.io import read_json  # noqa: E402

CUTS = [1, 5, 20]
DEPTH = 100
SECOND_PARTS = {
    "tfidf kiwi+bigram": lambda: TfidfRetriever("kiwi+bigram"),
    "tfidf kiwi": lambda: TfidfRetriever("kiwi"),
    "bm25 char_ngram:3": lambda: BM25Retriever("char_ngram:3"),
}
WEIGHTS = [0.5, 0.6, 0.7, 0.8, 0.9]


def rankings_of(retriever, corpus, questions):
    retriever.index(corpus)
    return retriever.retrieve([q.question for q in questions], DEPTH)


def scores(rankings, questions, corpus) -> dict[str, float]:
    m = retrieval_metrics(rankings, questions, corpus, CUTS)
    return {k: m[k] for k in ("recall@1", "recall@5", "recall@20", "mrr@20")}


def row(name: str, m: dict[str, float]) -> str:
    return f"| {name} | {m['recall@1']:.2f} | {m['recall@5']:.2f} | {m['recall@20']:.2f} | {m['mrr@20']:.2f} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(KORQUAD))
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()
    data = read_json(args.dataset)
    header = ["| configuration | R@1 | R@5 | R@20 | MRR@20 |", "|---|---:|---:|---:|---:|"]

    def fused(first, second, fusion, weight):
        return fuse_rankings(first, second, DEPTH, fusion, weight)

    results = {}
    for parity in (0, 1):
        corpus, questions = subset(data, parity)
        bm25 = rankings_of(BM25Retriever(), corpus, questions)
        seconds = {name: rankings_of(make(), corpus, questions) for name, make in SECOND_PARTS.items()}
        results[parity] = (corpus, questions, bm25, seconds)

    corpus, questions, bm25, seconds = results[0]
    grid = []
    for (name, second), fusion, weight in itertools.product(seconds.items(), FUSIONS, WEIGHTS):
        m = scores(fused(bm25, second, fusion, weight), questions, corpus)
        grid.append(((m["mrr@20"], m["recall@1"]), name, fusion, weight, m))
        print(row(f"bm25 + {name}, {fusion}, {weight}", m), flush=True)
    bm25_even = scores(bm25, questions, corpus)
    _, best_name, best_fusion, best_weight, best_even = max(grid, key=lambda g: g[0])

    lines = [
        "## Hybrid retrieval: chosen on training articles (`benchmarks/hybrid_choice.py`)", "",
        "Command: `flock /tmp/odqa-cpu.lock python benchmarks/hybrid_choice.py`  ",
        f"Machine: {machine()}.  ",
        f"Data: {Path(args.dataset).name} split by article. First part: the default bm25 (kiwi+bigram); second "
        f"part one of {', '.join(SECOND_PARTS)}; fusion {', '.join(FUSIONS)}; bm25's share "
        f"{', '.join(map(str, WEIGHTS))}; each part retrieves its top {DEPTH}. Chosen by MRR@20 (then R@1) on the "
        f"{len(questions)} questions of the even articles.", "",
        "### Even articles (choosing): bm25 alone and the best of each fusion", "", *header,
        row("bm25 alone", bm25_even),
    ]
    for fusion in FUSIONS:
        _, name, _, weight, m = max((g for g in grid if g[2] == fusion), key=lambda g: g[0])
        lines.append(row(f"bm25 + {name}, {fusion}, bm25 share {weight}", m))
    old = next(g for g in grid if g[1:4] == ("tfidf kiwi+bigram", "rrf", 0.5))
    lines.append(row("old default: bm25 + tfidf kiwi+bigram, rrf, 0.5", old[4]))

    corpus, questions, bm25, seconds = results[1]
    odd_bm25 = scores(bm25, questions, corpus)
    odd_old = scores(fused(bm25, seconds["tfidf kiwi+bigram"], "rrf", 0.5), questions, corpus)
    odd_best = scores(fused(bm25, seconds[best_name], best_fusion, best_weight), questions, corpus)
    lines += ["", f"### Odd articles (held out, {len(questions)} questions)", "", *header,
              row("bm25 alone", odd_bm25),
              row("old default: bm25 + tfidf kiwi+bigram, rrf, 0.5", odd_old),
              row(f"chosen: bm25 + {best_name}, {best_fusion}, bm25 share {best_weight}", odd_best)]
    text = "\n".join(lines)
    publish("hybrid_choice", text, args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
