"""Lucene + Nori through Pyserini: build an index and search it, for benchmarks/peers_retrieval.py.

Runs in the Python that has Pyserini (a separate environment: Pyserini is big and needs Java 21+), so
odqa's own environment never imports it. Input: a JSON file {"passages": [{"id", "contents"}],
"queries": [{"id", "text"}], "settings": [[k1, b], ...], "k": 20}; output (the work directory):
``runs.json`` {"k1,b": {query id: [passage ids, best first]}} and ``timings.json``.

  JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64 OPENAI_API_KEY=unused \\
      PEERS_PYTHON benchmarks/peers/lucene_worker.py INPUT.json WORK_DIR
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    source, work = Path(sys.argv[1]), Path(sys.argv[2])
    job = json.loads(source.read_text(encoding="utf-8"))
    docs, index = work / "docs", work / "index"
    docs.mkdir(parents=True, exist_ok=True)
    with (docs / "docs.jsonl").open("w", encoding="utf-8") as f:
        for p in job["passages"]:
            f.write(json.dumps({"id": p["id"], "contents": p["contents"]}, ensure_ascii=False) + "\n")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pyserini.index.lucene", "--collection", "JsonCollection", "--input",
                    str(docs), "--index", str(index), "--generator", "DefaultLuceneDocumentGenerator", "--threads",
                    str(job.get("index_threads", 1)), "--language", "ko", "--storePositions", "--storeDocvectors"],
                   check=True, capture_output=True)
    timings = {"index_seconds": time.perf_counter() - start, "index_bytes": directory_bytes(index),
               "indexer_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}

    from pyserini.search.lucene import LuceneSearcher

    searcher = LuceneSearcher(str(index))
    searcher.set_language("ko")
    ids = [q["id"] for q in job["queries"]]
    texts = [q["text"] for q in job["queries"]]
    k = int(job.get("k", 20))
    runs = {}
    for n, (k1, b) in enumerate(job["settings"]):
        searcher.set_bm25(float(k1), float(b))
        searcher.search(texts[0], k)  # warm-up
        start = time.perf_counter()
        run = {qid: [hit.docid for hit in searcher.search(text, k)] for qid, text in zip(ids, texts)}
        seconds = time.perf_counter() - start
        runs[f"{k1},{b}"] = run
        if n == 0:  # the first setting: also two threads, Pyserini's batch search
            timings["qps_1_thread"] = len(texts) / seconds
            start = time.perf_counter()
            searcher.batch_search(texts, [str(i) for i in range(len(texts))], k, threads=2)
            timings["qps_2_threads"] = len(texts) / (time.perf_counter() - start)
    timings["searcher_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the JVM is in here
    (work / "runs.json").write_text(json.dumps(runs), encoding="utf-8")
    (work / "timings.json").write_text(json.dumps(timings), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
