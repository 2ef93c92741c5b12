"""What the HTTP server costs: `odqa serve` against calling ``ODQAPipeline`` directly, fp32 and int8.

The e5-small KorQuAD reader (benchmarks/reader_learning.py) behind a bm25 index of the whole KorQuAD half;
questions from the held-out odd articles. For each precision:

* latency of one question at k=5, p50/p95 over ``--questions`` questions asked one after another:
  ``pipe(question, top_k=5)`` directly, and ``POST /answer`` to a server on a loopback port;
* throughput with ``--clients`` concurrent clients (8), each sending its share of the questions one by
  one: the server's micro-batching reads requests that arrive together in one batch. Directly, the same
  questions in one ``pipe(list)`` call are the batched best case.

  flock /tmp/odqa-cpu.lock python benchmarks/serve_latency.py
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference_common import latency_setup, load_reader  # noqa: E402
from reader_learning import DEFAULT_READER_DIR, shown_path  # noqa: E402

from report import KORQUAD, machine, publish  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode("utf-8"),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def measure(pipe, questions: list[str], clients: int, top_k: int) -> dict[str, float]:
    from odqa.serve.app import ServeOptions, background_server, create_app

    pipe(questions[0], top_k=top_k)  # warm-up: first-call allocations, numba JIT of bm25
    direct = []
    for q in questions:
        start = time.perf_counter()
        pipe(q, top_k=top_k)
        direct.append(time.perf_counter() - start)
    start = time.perf_counter()
    pipe(questions, top_k=top_k)
    direct_batch = len(questions) / (time.perf_counter() - start)

    with background_server(create_app(pipe, ServeOptions(top_k=top_k))) as url:
        served = []
        for q in questions:
            start = time.perf_counter()
            post(url + "/answer", {"question": q})
            served.append(time.perf_counter() - start)
        shares = [questions[i::clients] for i in range(clients)]
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(lambda share: [post(url + "/answer", {"question": q}) for q in share], shares))
        concurrent = len(questions) / (time.perf_counter() - start)
        with urllib.request.urlopen(url + "/health") as response:
            batching = json.loads(response.read())
    return {"direct_p50": percentile(direct, 50), "direct_p95": percentile(direct, 95),
            "served_p50": percentile(served, 50), "served_p95": percentile(served, 95),
            "direct_batch_qps": direct_batch, "served_concurrent_qps": concurrent,
            "mean_batch": batching["batching"]["mean_batch"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(KORQUAD))
    parser.add_argument("--reader_dir", default=str(DEFAULT_READER_DIR))
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--top_k", type=int, default=5)
    parser.add_argument("--precisions", nargs="+", default=["none", "int8"])
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()
    if not (Path(args.reader_dir) / "config.json").is_file():
        sys.exit(f"{args.reader_dir}: no trained reader; run benchmarks/reader_learning.py first.")

    from odqa.pipeline import ODQAPipeline

    with tempfile.TemporaryDirectory() as tmp:
        even, questions, retriever = latency_setup(args.dataset, args.questions, Path(tmp))
        rows = {}
        for precision in args.precisions:
            reader = load_reader(args.reader_dir, precision, even)
            rows[precision] = measure(ODQAPipeline(retriever, reader), questions, args.clients, args.top_k)
            print(precision, json.dumps({k: round(v, 3) for k, v in rows[precision].items()}))

    lines = ["## `odqa serve`: latency and throughput (`benchmarks/serve_latency.py`)", "",
             f"Machine: {machine()}. Reader: `{shown_path(Path(args.reader_dir))}` (e5-small), bm25 over the "
             f"{len(retriever.corpus)} passages of the KorQuAD half, {len(questions)} questions of the odd articles, "
             f"k={args.top_k}. Latency: one question at a time; throughput: {args.clients} concurrent clients "
             "against the server, one batched `pipe(list)` call directly.", "",
             "| precision | direct p50 / p95 (s) | served p50 / p95 (s) | direct batched (q/s) | "
             f"served, {args.clients} clients (q/s) | mean micro-batch |", "|---|---|---|---|---|---|"]
    for precision, r in rows.items():
        lines.append(f"| {precision} | {r['direct_p50']:.2f} / {r['direct_p95']:.2f} | {r['served_p50']:.2f} / "
                     f"{r['served_p95']:.2f} | {r['direct_batch_qps']:.2f} | {r['served_concurrent_qps']:.2f} | "
                     f"{r['mean_batch']:.1f} |")
    base = rows[args.precisions[0]]
    lines += ["", f"The server adds {1000 * (base['served_p50'] - base['direct_p50']):.0f} ms to the median "
                  f"question ({base['served_p50'] / base['direct_p50']:.2f}x); with {args.clients} clients its "
                  f"micro-batching reaches {base['served_concurrent_qps'] / base['direct_batch_qps']:.2f}x the "
                  "throughput of one batched direct call."]
    text = "\n".join(lines)
    publish("serve", text, args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
