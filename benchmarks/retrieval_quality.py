"""Retrieval quality on the KorQuAD v1.0 dev half (gold = the question's own context).

    flock /tmp/odqa-cpu.lock python benchmarks/retrieval_quality.py [--dataset PATH] [--no_write]

Compares tokenizers under BM25 (reference parameters k1 0.9, b 0.4, no title, as in the
reference table), TF-IDF, and the default configuration; then checks the default's
choice on an even/odd article split (parameters were picked on the even articles).
"""
from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
logging.getLogger("bm25s").setLevel(logging.WARNING)

from odqa.retrieval.bm25 import BM25Retriever  # noqa: E402
from odqa.retrieval.corpus import Corpus, iter_mrc_examples  # noqa: E402
from odqa.retrieval.evaluation import evaluate_retriever, questions_with_gold  # noqa: E402
from odqa.retrieval.tfidf import TfidfRetriever  # noqa: E402
from odqa.utils.io import read_json  # noqa: E402
from report import update_section  # noqa: E402

DATASET = Path(__file__).resolve().parents[2] / "shared" / "data" / "korquad" / "KorQuAD_v1.0_dev_half.json"
CUTS = [1, 5, 20]
REF = {"k1": 0.9, "b": 0.4, "title_weight": 0}


def subset(data, parity=None, modulus=2):
    """Passages and questions of the articles numbered ``parity`` modulo ``modulus`` (all: ``None``)."""
    d = {"data": [a for i, a in enumerate(data["data"]) if parity is None or i % modulus == parity]}
    examples = [e for e in iter_mrc_examples(d) if e["question"]]
    corpus = Corpus.from_mrc_dataset(d)
    return corpus, questions_with_gold(examples, corpus)


def measure(retriever, corpus, questions):
    start = time.perf_counter()
    retriever.index(corpus)
    index_seconds = time.perf_counter() - start
    m = evaluate_retriever(retriever, questions, CUTS + [100])
    return {**{k: m[k] for k in ["recall@1", "recall@5", "recall@20", "mrr@20"]},
            "index_s": index_seconds, "qps": m["queries_per_second"]}


def row(name, m):
    return (f"| {name} | {m['recall@1']:.2f} | {m['recall@5']:.2f} | {m['recall@20']:.2f} | {m['mrr@20']:.2f} "
            f"| {m['index_s']:.1f} | {m['qps']:.0f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=str(DATASET))
    ap.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = ap.parse_args()
    data = read_json(args.dataset)
    corpus, questions = subset(data)
    header = ["| configuration | R@1 | R@5 | R@20 | MRR@20 | index s | queries/s |", "|---|---|---|---|---|---|---|"]
    lines = ["## Retrieval quality on the KorQuAD half (`benchmarks/retrieval_quality.py`)", "",
             "Command: `flock /tmp/odqa-cpu.lock python benchmarks/retrieval_quality.py`  ",
             f"Dataset: `{Path(args.dataset).name}` ({len(corpus)} passages after merging identical contexts, "
             f"{len(questions)} questions). Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
             f"Python {platform.python_version()}. Index time includes tokenization; queries/s includes query "
             f"tokenization.", "", "### Tokenizers (BM25 lucene, k1 0.9, b 0.4, text only)", "", *header]
    configs = [("bm25 whitespace", BM25Retriever("whitespace", **REF)),
               ("bm25 char_ngram:2 (bigram)", BM25Retriever("bigram", **REF)),
               ("bm25 char_ngram:3", BM25Retriever("char_ngram:3", **REF)),
               ("bm25 hf:minilm (English WordPiece; no Korean model offline)", BM25Retriever("hf:minilm", **REF)),
               ("bm25 kiwi:all", BM25Retriever("kiwi:all", **REF)),
               ("bm25 kiwi (content morphemes)", BM25Retriever("kiwi", **REF)),
               ("bm25 kiwi+bigram", BM25Retriever("kiwi+bigram", **REF)),
               ("bm25 kiwi+char_ngram:3", BM25Retriever("kiwi+char_ngram:3", **REF)),
               ("tfidf kiwi", TfidfRetriever("kiwi")),
               ("tfidf kiwi+bigram", TfidfRetriever("kiwi+bigram")),
               ("**default**: bm25 kiwi+bigram, k1 0.6, b 0.75, title once", BM25Retriever())]
    for name, retriever in configs:
        lines.append(row(name, measure(retriever, corpus, questions)))
        print(lines[-1], flush=True)
    lines += ["", "Reference (other systems, same half): Lucene 8.7 BM25 + Nori (k1 0.9, b 0.4) 91.62 / 99.19 / "
              "99.85 / 95.08; bm25s + Kiwi content morphemes 91.89 / 99.03 / 99.76 / 95.16; bm25s whitespace "
              "77.47 / 89.69 / 93.91 / 82.81. Target for the default: R@1 >= 92.5, R@5 >= 99.2, R@20 >= 99.85, "
              "MRR@20 >= 95.5.", "",
              "### Held-out check of the default (grid k1 {0.6, 0.9, 1.2, 1.5} x b {0.3, 0.4, 0.6, 0.75} x title "
              "{0, 1} chosen by MRR@20 on even articles; odd articles never used for the choice)", "", *header]
    for label, parity in (("even articles (tuning)", 0), ("odd articles (held out)", 1)):
        sub_corpus, sub_questions = subset(data, parity)
        for name, retriever in ((f"reference bm25 kiwi, k1 0.9, b 0.4 — {label}", BM25Retriever("kiwi", **REF)),
                                (f"default — {label}", BM25Retriever())):
            lines.append(row(name, measure(retriever, sub_corpus, sub_questions)))
            print(lines[-1], flush=True)
    print("\n".join(lines))
    if not args.no_write:
        update_section("retrieval_quality", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
