"""Latency of one question at k=5: batches cut by length (odqa's forward loop) against fixed-size batches.

The e5-small KorQuAD reader (benchmarks/reader_learning.py) behind bm25 over the whole KorQuAD half;
``--questions`` questions of the held-out odd articles asked one at a time through ``ODQAPipeline``,
fp32 and static int8 (OpenVINO, calibrated on the even articles). "fixed": the windows of a question,
sorted by length, in batches of ``batch_size`` padded to their longest (the loop before); "by length":
:func:`odqa.reader.inference.length_batches` cuts where padding would cost more than a model call. Both
settings are timed in the same process, alternating question by question; the answers must be the same.

  flock /tmp/odqa-cpu.lock python benchmarks/length_batching.py
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference_common import latency_setup, load_reader  # noqa: E402
from reader_learning import DEFAULT_READER_DIR, shown_path  # noqa: E402
from report import KORQUAD, machine, publish  # noqa: E402

FIXED = 10 ** 9  # an overhead no padding can outweigh: the fewest batches, i.e. fixed-size ones


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(KORQUAD))
    parser.add_argument("--reader_dir", default=str(DEFAULT_READER_DIR) + "_120")
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--top_k", type=int, default=5)
    parser.add_argument("--precisions", nargs="+", default=["none", "int8"])
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()

    import odqa.reader.inference as inference
    from odqa.pipeline import ODQAPipeline

    default_overhead = inference.BATCH_OVERHEAD_TOKENS
    settings = {"fixed": FIXED, "by length": default_overhead}
    with tempfile.TemporaryDirectory() as tmp:
        even, questions, retriever = latency_setup(args.dataset, args.questions, Path(tmp))
        rows = {}
        for precision in args.precisions:
            pipe = ODQAPipeline(retriever, load_reader(args.reader_dir, precision, even))
            pipe(questions[0], top_k=args.top_k)  # warm-up
            seconds = {name: [] for name in settings}
            answers = {name: [] for name in settings}
            for q in questions:
                for name, overhead in settings.items():
                    inference.BATCH_OVERHEAD_TOKENS = overhead
                    start = time.perf_counter()
                    found = pipe(q, top_k=args.top_k)
                    seconds[name].append(time.perf_counter() - start)
                    answers[name].append(found[0].text if found else "")
            inference.BATCH_OVERHEAD_TOKENS = default_overhead
            rows[precision] = {name: (np.percentile(s, 50), np.percentile(s, 95)) for name, s in seconds.items()}
            rows[precision]["same_answers"] = sum(a == b for a, b in zip(*answers.values()))
            print(precision, rows[precision], flush=True)

    lines = ["## Batches cut by length: one question at k=5 (`benchmarks/length_batching.py`)", "",
             f"Command: `flock /tmp/odqa-cpu.lock python benchmarks/length_batching.py --questions {args.questions}`  ",
             f"Machine: {machine()}.  ",
             f"Reader: `{shown_path(Path(args.reader_dir))}` (e5-small), bm25 over the {len(retriever.corpus)} passages "
             f"of the KorQuAD half, {len(questions)} questions of the odd articles one at a time through "
             f"`ODQAPipeline`, k={args.top_k}; both batchings timed in the same process, alternating per question.",
             "", "| precision | fixed batches p50 / p95 (s) | cut by length p50 / p95 (s) | p50 speed-up | same top answer |",
             "|---|---|---|---:|---:|"]
    for precision, r in rows.items():
        (f50, f95), (l50, l95) = r["fixed"], r["by length"]
        lines.append(f"| {precision} | {f50:.3f} / {f95:.3f} | **{l50:.3f}** / {l95:.3f} | {f50 / l50:.2f}x | "
                     f"{r['same_answers']}/{len(questions)} |")
    text = "\n".join(lines)
    publish("length_batching", text, args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
