"""The README's sample runs, measured: the quickstart's open-domain step and the reader example script.

0. With ``--run_quickstart``: ``FORCE_TRAIN=1 bash scripts/quickstart.sh`` timed end to end (it retrains the
   reader in ``models/sample_reader``), the time the README quotes.
1. With the reader and index that ``bash scripts/quickstart.sh`` leaves in ``models/sample_reader`` and
   ``models/sample_bm25``: ``python -m odqa infer`` on the 85 sample validation questions, bm25 top-3,
   once per ``--retriever_weights`` value, next to the reader's own evaluation on the gold passages
   (``run_info.json`` of its training run).
2. ``bash scripts/train_mrc_v2_example.sh`` timed end to end (into a temporary folder), with its eval EM/F1.

  flock /tmp/odqa-cpu.lock python benchmarks/sample_runs.py
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import MINILM_NOTE, REPO, machine, publish  # noqa: E402

import os  # noqa: E402

from odqa.pipeline.reading import DEFAULT_TOP_K  # noqa: E402

READER = REPO / "models" / "sample_reader"
INDEX = REPO / "models" / "sample_bm25"
QUESTIONS = REPO / "data" / "sample" / "validation.json"


def infer(weight: float, top_k: int, out: Path) -> dict:
    """One ``odqa infer`` run, as a user types it; its metrics.json."""
    subprocess.run([sys.executable, "-m", "odqa", "infer", "--index", str(INDEX), "--model", str(READER),
                    "--dataset_path", str(QUESTIONS), "--top_k_retrieval", str(top_k),
                    "--retriever_weight", str(weight), "--do_eval", "--quiet", "--output_dir", str(out)],
                   check=True, cwd=REPO)
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def time_example_script(out: Path) -> tuple[float, dict]:
    """Wall time of ``bash scripts/train_mrc_v2_example.sh`` and its final eval metrics."""
    start = time.perf_counter()
    subprocess.run(["bash", "scripts/train_mrc_v2_example.sh", "--output_dir", str(out)], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    info = json.loads((out / "e5_lstm_example" / "run_info.json").read_text(encoding="utf-8"))  # its --run_name
    return seconds, info["results"]["eval"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--top_k", type=int, default=DEFAULT_TOP_K,
                        help="passages retrieved per question (the default, as in the quickstart)")
    parser.add_argument("--retriever_weights", type=float, nargs="+", default=[0.0, 0.2])
    parser.add_argument("--skip_example", action="store_true", help="do not time scripts/train_mrc_v2_example.sh")
    parser.add_argument("--run_quickstart", action="store_true",
                        help="first time `FORCE_TRAIN=1 bash scripts/quickstart.sh` end to end (retrains the sample reader)")
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()
    quickstart_seconds = None
    if args.run_quickstart:
        start = time.perf_counter()
        subprocess.run(["bash", "scripts/quickstart.sh"], check=True, cwd=REPO, stdout=subprocess.DEVNULL,
                       env={**os.environ, "FORCE_TRAIN": "1"})
        quickstart_seconds = time.perf_counter() - start
        print(f"quickstart: {quickstart_seconds / 60:.1f} min", flush=True)
    if not (READER / "config.json").is_file() or not INDEX.is_dir():
        sys.exit(f"{READER} or {INDEX} is missing: run `bash scripts/quickstart.sh` first.")

    tmp = Path(tempfile.mkdtemp(prefix="odqa_sample_runs_"))
    info = json.loads((READER / "run_info.json").read_text(encoding="utf-8"))
    gold, model = info["results"]["eval"], info.get("reader", {}).get("model", "?")
    rows = [f"| gold passage (the reader's own evaluation, `{READER.relative_to(REPO)}/run_info.json`) "
            f"| {gold['eval_exact_match']:.2f} | {gold['eval_f1']:.2f} | - | - |"]
    for weight in args.retriever_weights:
        m = infer(weight, args.top_k, tmp / f"w{weight}")
        rows.append(f"| bm25 top-{args.top_k}, `--retriever_weight {weight:g}` | {m['exact_match']:.2f} | {m['f1']:.2f} "
                    f"| {m['retrieval'][f'recall@{args.top_k}']:.1f} | {m['questions_per_second']:.2f} |")
        print(rows[-1], flush=True)

    lines = [
        "## The README's sample runs (`benchmarks/sample_runs.py`)", "",
        f"Command: `flock /tmp/odqa-cpu.lock python {' '.join(['benchmarks/sample_runs.py', *sys.argv[1:]])}`  ",
        f"Machine: {machine()}.  ",
        f"Reader: `{READER.relative_to(REPO)}` as `bash scripts/quickstart.sh` trains it (`{model}`, 2 epochs on "
        "data/sample/train.json); questions: the 85 of data/sample/validation.json; corpus: the 64 sample passages."
        + (" " + MINILM_NOTE if "minilm" in model.lower() else ""), "",
        "| quickstart step 2 (`odqa infer`) | EM | F1 | recall@k | questions/s |", "|---|---:|---:|---:|---:|", *rows,
    ]
    if quickstart_seconds is not None:
        lines += ["", f"`FORCE_TRAIN=1 bash scripts/quickstart.sh` (installs already present, reader retrained): "
                      f"**{quickstart_seconds / 60:.1f} min** wall time end to end."]
    if not args.skip_example:
        seconds, metrics = time_example_script(tmp / "example_reader")
        lines += ["", f"`bash scripts/train_mrc_v2_example.sh`: **{seconds / 60:.1f} min** wall time end to end "
                      f"(model load, training, evaluations, saving); its eval on 60 sample validation questions it "
                      f"never trained on: EM {metrics['eval_exact_match']:.2f} / F1 {metrics['eval_f1']:.2f}."]
    text = "\n".join(lines)
    publish("sample_runs", text, args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
