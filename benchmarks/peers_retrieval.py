"""odqa bm25 against Lucene + Nori (Pyserini / Anserini) on the KorQuAD half: same passages, same questions.

Lucene gets exactly the text odqa indexes (title once, then the passage), through Pyserini's Korean
analyzer (Nori; ``--language ko``). Reported: R@1/5/20 and MRR@20 on the held-out odd articles and on the
whole half, for Lucene at its defaults (k1 0.9, b 0.4) and at the (k1, b) with the best MRR@20 on the even
articles' questions (grid k1 {0.6, 0.9, 1.2, 1.5} x b {0.3, 0.4, 0.6, 0.75}), next to odqa bm25 and odqa
hybrid at their defaults; index build time, queries/s single-threaded and with 2 threads, index size.

Pyserini is a benchmark dependency only (big, and it needs Java 21+): install it in its own environment and
point ``--pyserini_python`` at that Python, e.g.

  python -m venv /work/peers-venv && /work/peers-venv/bin/pip install torch==2.13.0 pyserini==1.6.0
  JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64 OPENAI_API_KEY=unused \\
      flock /tmp/odqa-cpu.lock python benchmarks/peers_retrieval.py --pyserini_python /work/peers-venv/bin/python

(``OPENAI_API_KEY=unused``: Pyserini builds an OpenAI client when imported and fails without one; nothing is
sent.)

``--passages 200000``: the same two engines at scale instead, on the synthetic corpus of
``benchmarks/retrieval_speed.py`` (passages of 3-8 sentences re-sampled from the half, seeded; no gold, so
no recall): index build time (tokenization included), peak memory (maximum RSS of the process that builds
and of the one that searches), queries/s single-threaded and with 2 threads over the half's 3,316 questions.
Each engine runs in a process of its own, so neither's memory counts against the other.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import KORQUAD, machine, publish  # noqa: E402

CUTS = (1, 5, 20)
GRID = [(k1, b) for k1 in (0.6, 0.9, 1.2, 1.5) for b in (0.3, 0.4, 0.6, 0.75)]
LUCENE_DEFAULT = (0.9, 0.4)
WORKER = Path(__file__).resolve().parent / "peers" / "lucene_worker.py"


def check_pyserini(python: str) -> None:
    env = {**os.environ, "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "unused")}
    done = subprocess.run([python, "-c", "import pyserini.search.lucene"], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"Pyserini is not importable by {python} ({done.stderr.strip().splitlines()[-1:]}).\n"
                         + __doc__.split("Pyserini is a benchmark dependency only", 1)[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(KORQUAD))
    parser.add_argument("--pyserini_python", default=sys.executable, help="a Python with Pyserini installed")
    parser.add_argument("--passages", type=int, default=0,
                        help="N > 0: build and search a synthetic corpus of N passages instead (speed and memory)")
    parser.add_argument("--odqa_scale_job", default=None, help=argparse.SUPPRESS)  # the odqa side of --passages
    parser.add_argument("--no_write", action="store_true")
    args = parser.parse_args()
    if args.odqa_scale_job:
        return odqa_scale_job(Path(args.odqa_scale_job))
    check_pyserini(args.pyserini_python)
    if args.passages:
        return scale_run(args)

    from odqa.retrieval import get_retriever
    from odqa.retrieval.base import Hit
    from odqa.retrieval.bm25 import BM25Retriever
    from odqa.retrieval.corpus import Corpus, iter_mrc_examples
    from odqa.retrieval.evaluation import (
        evaluate_retriever,
        questions_with_gold,
        retrieval_metrics,
    )
    from odqa.utils.io import read_json

    def default_hybrid():
        from odqa.retrieval.hybrid import (
            DEFAULT_FUSION,
            DEFAULT_FUSION_WEIGHT,
            DEFAULT_HYBRID_PARTS,
            DEFAULT_HYBRID_TOKENIZERS,
            HybridRetriever,
        )

        parts = [get_retriever(part, tokenizer=tok) for part, tok in zip(DEFAULT_HYBRID_PARTS,
                                                                          DEFAULT_HYBRID_TOKENIZERS)]
        return HybridRetriever(parts[0], parts[1], fusion=DEFAULT_FUSION, weight=DEFAULT_FUSION_WEIGHT)

    data = read_json(args.dataset)
    corpus = Corpus.from_mrc_dataset(data)
    halves = {}
    for name, parity in (("even", 0), ("odd", 1)):
        part = {"data": [a for i, a in enumerate(data["data"]) if i % 2 == parity]}
        halves[name] = questions_with_gold([e for e in iter_mrc_examples(part) if e["question"]], corpus)
    halves["all"] = halves["even"] + halves["odd"]

    def scores(rankings, questions):
        m = retrieval_metrics(rankings, questions, corpus, CUTS)
        return {k: m[k] for k in ("recall@1", "recall@5", "recall@20", "mrr@20")}

    # odqa, defaults
    rows = {}
    for label, make in (("odqa bm25 (default: Kiwi morphemes + bigrams, k1 0.6, b 0.75, title once)", BM25Retriever),
                        ("odqa hybrid (default: bm25 + tf-idf, weighted 0.9)", default_hybrid)):
        retriever = make()
        start = time.perf_counter()
        retriever.index(corpus)
        index_seconds = time.perf_counter() - start
        evaluation = evaluate_retriever(retriever, halves["all"], CUTS)
        rankings = retriever.retrieve([q.question for q in halves["all"]], max(CUTS))
        by_id = {q.id: r for q, r in zip(halves["all"], rankings)}
        rows[label] = {h: scores([by_id[q.id] for q in halves[h]], halves[h]) for h in ("odd", "all")}
        rows[label].update(index_seconds=index_seconds, qps_1=None, qps_2=evaluation["queries_per_second"],
                           index_bytes=None)
        if label.startswith("odqa bm25"):
            retriever.n_threads = 1  # the same index, scored on one thread
            rows[label]["qps_1"] = evaluate_retriever(retriever, halves["all"], CUTS)["queries_per_second"]
            with tempfile.TemporaryDirectory() as tmp:
                retriever.save(Path(tmp) / "idx")
                rows[label]["index_bytes"] = sum(p.stat().st_size for p in (Path(tmp) / "idx").rglob("*")
                                                 if p.is_file())
            contents = retriever.passage_texts(corpus.passages)

    # Lucene + Nori, in Pyserini's environment
    work = Path(tempfile.mkdtemp(prefix="odqa-peers-lucene-"))
    job = {"passages": [{"id": p.id, "contents": c} for p, c in zip(corpus.passages, contents)],
           "queries": [{"id": q.id, "text": q.question} for q in halves["all"]],
           "settings": [list(LUCENE_DEFAULT)] + [list(s) for s in GRID if s != LUCENE_DEFAULT], "k": max(CUTS)}
    (work / "job.json").write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
    env = {**os.environ, "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "unused")}
    subprocess.run([args.pyserini_python, str(WORKER), str(work / "job.json"), str(work)], check=True, env=env)
    runs = json.loads((work / "runs.json").read_text(encoding="utf-8"))
    timings = json.loads((work / "timings.json").read_text(encoding="utf-8"))

    def lucene_rankings(setting: str, questions) -> list:
        return [[Hit(pid, 0.0, r + 1) for r, pid in enumerate(runs[setting][q.id])] for q in questions]

    chosen = max(runs, key=lambda s: scores(lucene_rankings(s, halves["even"]), halves["even"])["mrr@20"])
    default = ",".join(str(x) for x in LUCENE_DEFAULT)
    for label, setting in ((f"Lucene + Nori, defaults (k1 {LUCENE_DEFAULT[0]}, b {LUCENE_DEFAULT[1]})", default),
                           (f"Lucene + Nori, best on even articles (k1 {chosen.split(',')[0]}, b {chosen.split(',')[1]})",
                            chosen)):
        rows[label] = {h: scores(lucene_rankings(setting, halves[h]), halves[h]) for h in ("odd", "all")}
        rows[label].update(index_seconds=timings["index_seconds"], qps_1=timings["qps_1_thread"] if setting == default
                           else None, qps_2=timings["qps_2_threads"] if setting == default else None,
                           index_bytes=timings["index_bytes"])

    def fmt(x, spec):
        return "–" if x is None else format(x, spec)

    lines = [
        "## Peers: odqa bm25 vs Lucene + Nori (Pyserini), KorQuAD half (`benchmarks/peers_retrieval.py`)", "",
        "Command: `JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64 flock /tmp/odqa-cpu.lock python "
        "benchmarks/peers_retrieval.py --pyserini_python <venv with pyserini 1.6.0>/bin/python`  ",
        f"Machine: {machine()}. Pyserini 1.6.0 (Anserini fat jar), Java 25, Korean analyzer (Nori).  ",
        f"{len(corpus)} passages (identical contexts merged), indexed by both as odqa indexes them (title once, "
        f"then the text); {len(halves['all'])} questions, {len(halves['odd'])} of them from the held-out odd "
        "articles. Lucene's (k1, b) chosen by MRR@20 on the even articles' questions over a 4 x 4 grid. "
        "q/s: Lucene's `search` one query at a time and Pyserini's `batch_search(threads=2)`; odqa's `retrieve` "
        "on all questions at once (its API takes a batch) with 1 thread and with its default (both cores); index time includes tokenization (odqa: Kiwi).", "",
        "| retriever | odd R@1 | odd R@5 | odd R@20 | odd MRR@20 | all R@1 | all R@5 | all R@20 | all MRR@20 | "
        "index s | q/s | q/s 2 threads | index MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in rows.items():
        o, a = r["odd"], r["all"]
        lines.append(f"| {label} | {o['recall@1']:.2f} | {o['recall@5']:.2f} | {o['recall@20']:.2f} | "
                     f"{o['mrr@20']:.2f} | {a['recall@1']:.2f} | {a['recall@5']:.2f} | {a['recall@20']:.2f} | "
                     f"{a['mrr@20']:.2f} | {r['index_seconds']:.1f} | {fmt(r['qps_1'], '.0f')} | "
                     f"{fmt(r['qps_2'], '.0f')} | {fmt(r['index_bytes'] and r['index_bytes'] / 1e6, '.1f')} |")
    print("\n".join(lines))
    publish("peers_retrieval", "\n".join(lines), args.no_write)
    return 0


def peak_rss_mb(who: int) -> float:
    import resource

    return resource.getrusage(who).ru_maxrss / 1024  # Linux: kB


def odqa_scale_job(work: Path) -> int:
    """odqa's side of ``--passages``, in a fresh process: index, then search one thread and two."""
    import resource

    from retrieval_speed import synthetic_corpus

    from odqa.retrieval.bm25 import BM25Retriever
    from odqa.retrieval.corpus import iter_mrc_examples
    from odqa.utils.io import read_json, write_json

    job = read_json(work / "odqa_job.json")
    examples = list(iter_mrc_examples(read_json(job["dataset"])))
    corpus = synthetic_corpus(examples, job["passages"])
    queries = [e["question"] for e in examples if e["question"]]
    before = peak_rss_mb(resource.RUSAGE_SELF)
    retriever = BM25Retriever()
    start = time.perf_counter()
    retriever.index(corpus)
    timings = {"index_seconds": time.perf_counter() - start, "rss_before_index_mb": before}
    retriever.retrieve(queries[:10], 20)  # warm-up (numba)
    for threads, key in ((1, "qps_1_thread"), (2, "qps_2_threads")):
        retriever.n_threads = threads
        start = time.perf_counter()
        retriever.retrieve(queries, 20)
        timings[key] = len(queries) / (time.perf_counter() - start)
    timings["peak_rss_mb"] = peak_rss_mb(resource.RUSAGE_SELF)
    with tempfile.TemporaryDirectory() as tmp:
        retriever.save(Path(tmp) / "idx")
        timings["index_bytes"] = sum(f.stat().st_size for f in (Path(tmp) / "idx").rglob("*") if f.is_file())
    write_json(work / "odqa_timings.json", timings)
    return 0


def scale_run(args) -> int:
    """Both engines on ``args.passages`` synthetic passages: build time, peak memory, queries/s."""
    from retrieval_speed import synthetic_corpus

    from odqa.retrieval.bm25 import BM25Retriever
    from odqa.retrieval.corpus import iter_mrc_examples
    from odqa.utils.io import read_json, write_json

    work = Path(tempfile.mkdtemp(prefix="odqa-peers-scale-"))
    write_json(work / "odqa_job.json", {"dataset": str(args.dataset), "passages": args.passages})
    subprocess.run([sys.executable, __file__, "--odqa_scale_job", str(work)], check=True)
    odqa = read_json(work / "odqa_timings.json")

    examples = list(iter_mrc_examples(read_json(args.dataset)))
    corpus = synthetic_corpus(examples, args.passages)
    contents = BM25Retriever().passage_texts(corpus.passages)  # what odqa indexes (no titles here)
    job = {"passages": [{"id": p.id, "contents": c} for p, c in zip(corpus.passages, contents)],
           "queries": [{"id": str(i), "text": e["question"]} for i, e in enumerate(examples) if e["question"]],
           "settings": [list(LUCENE_DEFAULT)], "k": 20}
    del corpus, contents
    (work / "job.json").write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
    n_queries = len(job["queries"])
    del job
    env = {**os.environ, "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "unused")}
    subprocess.run([args.pyserini_python, str(WORKER), str(work / "job.json"), str(work)], check=True, env=env)
    lucene = json.loads((work / "timings.json").read_text(encoding="utf-8"))

    def row(label, t, peak):
        return (f"| {label} | {t['index_seconds']:.0f} | {peak:,.0f} | {t['qps_1_thread']:.0f} | "
                f"{t['qps_2_threads']:.0f} | {t['index_bytes'] / 1e6:.0f} |")

    lucene_peak = max(lucene.get("indexer_peak_rss_mb", 0.0), lucene.get("searcher_peak_rss_mb", 0.0))
    lines = [
        f"## Peers at scale: odqa bm25 vs Lucene + Nori, {args.passages:,} passages (`benchmarks/peers_retrieval.py`)",
        "",
        "Command: `JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64 flock /tmp/odqa-cpu.lock python "
        f"benchmarks/peers_retrieval.py --passages {args.passages} --pyserini_python <venv with pyserini 1.6.0>/bin/python`  ",
        f"Machine: {machine()}. Pyserini 1.6.0 (Anserini fat jar), Java 25, Korean analyzer (Nori).  ",
        f"The synthetic corpus of `benchmarks/retrieval_speed.py` ({args.passages:,} passages of 3-8 sentences re-sampled "
        f"from the KorQuAD half, seeded); {n_queries:,} queries (the half's questions), top 20. Both at their defaults "
        "(odqa: Kiwi morphemes + bigrams, k1 0.6, b 0.75; Lucene: Nori, k1 0.9, b 0.4); index time includes "
        "tokenization; each engine in a process of its own: peak memory is its maximum RSS (Lucene: the larger of "
        "the indexing JVM and the searching process). q/s 1 thread: odqa's batch `retrieve` on one thread, "
        "Lucene's `search` one query at a time; 2 threads: odqa's default, Pyserini's `batch_search(threads=2)`.", "",
        "| retriever | index s | peak MB | q/s | q/s 2 threads | index MB |", "|---|---:|---:|---:|---:|---:|",
        row("odqa bm25 (defaults)", odqa, odqa["peak_rss_mb"]),
        row("Lucene + Nori (defaults)", lucene, lucene_peak),
        "",
        f"odqa / Lucene: index time {odqa['index_seconds'] / lucene['index_seconds']:.2f}x, peak memory "
        f"{odqa['peak_rss_mb'] / lucene_peak:.2f}x, q/s {odqa['qps_1_thread'] / lucene['qps_1_thread']:.2f}x "
        f"(1 thread) and {odqa['qps_2_threads'] / lucene['qps_2_threads']:.2f}x (2 threads).",
    ]
    print("\n".join(lines))
    publish(f"peers_retrieval_{args.passages}", "\n".join(lines), args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
