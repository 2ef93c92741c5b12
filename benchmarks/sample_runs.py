"""The README's sample runs, measured: the quickstart and the reader example script.

0. With ``--run_quickstart``: ``bash scripts/quickstart.sh`` timed end to end (no training: it reads with the
   shipped reader ``e5-small-korquad``; the index in ``models/sample_bm25`` is rebuilt), the time the README quotes.
1. With the index that ``bash scripts/quickstart.sh`` leaves in ``models/sample_bm25``: ``python -m odqa infer``
   with the shipped reader on the 85 sample validation questions, bm25 top-k, once per ``--retriever_weights``
   value, next to the reader alone on the gold passages (scored from the same read, ``metrics.json``'s
   ``gold_passage``).
2. ``bash scripts/train_mrc_v2_example.sh`` timed end to end (into a temporary folder): the shipped reader
   fine-tuned on the 193 sample training questions, validation EM/F1 before and after.

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
from report import REPO, machine, publish  # noqa: E402

from odqa.reader.extractive import DEFAULT_TOP_K  # noqa: E402

READER = "e5-small-korquad"
INDEX = REPO / "models" / "sample_bm25"
QUESTIONS = REPO / "data" / "sample" / "validation.json"


def infer(weight: float, top_k: int, out: Path) -> dict:
    """One ``odqa infer`` run, as a user types it; its metrics.json."""
    subprocess.run([sys.executable, "-m", "odqa", "infer", "--index", str(INDEX), "--model", READER,
                    "--dataset_path", str(QUESTIONS), "--top_k_retrieval", str(top_k),
                    "--retriever_weight", str(weight), "--do_eval", "--quiet", "--output_dir", str(out)],
                   check=True, cwd=REPO)
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def time_example_script(out: Path) -> tuple[float, dict, dict]:
    """Wall time of ``bash scripts/train_mrc_v2_example.sh``; eval metrics before and after its fine-tuning."""
    start = time.perf_counter()
    subprocess.run(["bash", "scripts/train_mrc_v2_example.sh", "--output_dir", str(out)], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    before = json.loads((out / "before" / "run_info.json").read_text(encoding="utf-8"))
    after = json.loads((out / "korquad_sample_finetune" / "run_info.json").read_text(encoding="utf-8"))  # --run_name
    return seconds, before["results"]["eval"], after["results"]["eval"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--top_k", type=int, default=DEFAULT_TOP_K,
                        help="passages retrieved per question (the default, as in the quickstart)")
    parser.add_argument("--retriever_weights", type=float, nargs="+", default=[0.0, 0.2])
    parser.add_argument("--skip_example", action="store_true", help="do not time scripts/train_mrc_v2_example.sh")
    parser.add_argument("--run_quickstart", action="store_true",
                        help="first time `bash scripts/quickstart.sh` end to end (the sample index is rebuilt)")
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()
    quickstart_seconds = None
    if args.run_quickstart:
        start = time.perf_counter()
        import shutil

        shutil.rmtree(INDEX, ignore_errors=True)
        subprocess.run(["bash", "scripts/quickstart.sh"], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        quickstart_seconds = time.perf_counter() - start
        print(f"quickstart: {quickstart_seconds / 60:.1f} min", flush=True)
    if not INDEX.is_dir():
        sys.exit(f"{INDEX} is missing: run `bash scripts/quickstart.sh` first.")

    tmp = Path(tempfile.mkdtemp(prefix="odqa_sample_runs_"))
    rows = []
    for weight in args.retriever_weights:
        m = infer(weight, args.top_k, tmp / f"w{weight}")
        rows.append(f"| bm25 top-{args.top_k}, `--retriever_weight {weight:g}` | {m['exact_match']:.2f} | {m['f1']:.2f} "
                    f"| {m['retrieval'][f'recall@{args.top_k}']:.1f} | {m['questions_per_second']:.2f} |")
        if weight == args.retriever_weights[0]:
            g = m["gold_passage"]
            rows.insert(0, f"| the reader alone, gold passage ({g['questions']} of {g['of']} questions; from the same "
                           f"read) | {g['exact_match']:.2f} | {g['f1']:.2f} | - | - |")
        print(rows[-1], flush=True)

    lines = [
        "## The README's sample runs (`benchmarks/sample_runs.py`)", "",
        f"Command: `flock /tmp/odqa-cpu.lock python {' '.join(['benchmarks/sample_runs.py', *sys.argv[1:]])}`  ",
        f"Machine: {machine()}.  ",
        f"Reader: `{READER}`, the reader that ships with odqa (e5-small fine-tuned on the KorQuAD 1.0 dev half; "
        "never trained on data/sample); questions: the 85 of data/sample/validation.json; corpus: the 64 sample "
        "passages.", "",
        "| quickstart (`odqa infer`) | EM | F1 | recall@k | questions/s |", "|---|---:|---:|---:|---:|", *rows,
    ]
    if quickstart_seconds is not None:
        lines += ["", f"`bash scripts/quickstart.sh` (installs and the converted e5-small already present, index rebuilt, no training): "
                      f"**{quickstart_seconds / 60:.1f} min** wall time end to end."]
    if not args.skip_example:
        seconds, before, after = time_example_script(tmp / "example_reader")
        lines += ["", f"`bash scripts/train_mrc_v2_example.sh`: **{seconds / 60:.1f} min** wall time end to end "
                      "(evaluation before, fine-tuning with step-wise EM-gated evaluations, saving). The 85 sample "
                      f"validation questions, gold passage: **EM {before['eval_exact_match']:.2f} / F1 "
                      f"{before['eval_f1']:.2f}** before, **EM {after['eval_exact_match']:.2f} / F1 "
                      f"{after['eval_f1']:.2f}** after fine-tuning on the 193 training questions."]
    text = "\n".join(lines)
    publish("sample_runs", text, args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
