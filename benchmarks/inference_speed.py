"""Where reading time goes, and what int8 buys: stage timings of the SAME windows, fp32 vs int8.

Questions of the odd KorQuAD-half articles, bm25 top-k over all the half's passages (retrieved
once, so every reader reads exactly the same windows). For each reader (fp32; ``int8``, the static
OpenVINO encoder; ``int8-dynamic``, PyTorch dynamic quantization) the stages are timed inside one
``ExtractiveReader.read`` call: preprocess (examples + tokenization into windows), collate (length
sorting + padding), forward (the model), postprocess (spans, ranking). The static int8 reader is
calibrated beforehand on windows of EVEN-article questions (training data; timed apart).
Then each reader reads each question's GOLD passage (more questions, cheap) for the EM/F1 cost.

  flock /tmp/odqa-cpu.lock python benchmarks/inference_speed.py --questions 40 --top_k 5 --gold_questions 300
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference_common import (MINILM_NOTE, KORQUAD, even_article_windows_source, find_reader, half_corpus,  # noqa: E402
                              machine, odd_article_questions, reader_description)
from report import publish  # noqa: E402

MODES = ("none", "int8", "int8-dynamic")
LABEL = {"none": "fp32", "int8": "int8 (static, OpenVINO)", "int8-dynamic": "int8-dynamic (PyTorch)"}


def score(answers, questions, references):
    from odqa.metrics import compute_metrics

    predictions = {q["id"]: (a[0].text if a else "") for q, a in zip(questions, answers)}
    return compute_metrics(predictions, {q["id"]: references[q["id"]] for q in questions})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reader", help="reader folder (default: the one benchmarks/reader_learning.py saves)")
    parser.add_argument("--questions", type=int, default=40, help="questions read against their top-k passages")
    parser.add_argument("--top_k", type=int, default=5)
    parser.add_argument("--gold_questions", type=int, default=300, help="questions read against their gold passage")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--calibration_windows", type=int, default=128)
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()

    from odqa.metrics.cli import load_references
    from odqa.pipeline import ExtractiveReader, PassageToRead, passages_from_hits
    from odqa.retrieval import get_retriever, load_questions
    from odqa.retrieval.table import retrieve_hits
    from odqa.retrieval.corpus import context_id
    from odqa.data.loading import read_mrc_rows

    reader_dir = find_reader(args.reader)
    tmp = Path(tempfile.mkdtemp(prefix="odqa_infer_speed_"))
    corpus = half_corpus()
    retriever = get_retriever("bm25").index(corpus)
    qfile = odd_article_questions(tmp / "q.json", args.questions, seed=0)
    questions = load_questions(qfile)
    references = load_references(str(qfile))
    passages = passages_from_hits(retrieve_hits(retriever, questions, args.top_k))
    gfile = odd_article_questions(tmp / "g.json", args.gold_questions, seed=1)
    gold_rows = read_mrc_rows(gfile)
    gold_questions = [{"id": r["id"], "question": r["question"]} for r in gold_rows]
    gold_refs = load_references(str(gfile))
    gold_passages = [[PassageToRead(context_id(r["context"]), r["context"], r["title"])] for r in gold_rows]
    calibration_questions, calibration_passages = even_article_windows_source(args.calibration_windows)

    rows = {}
    for mode in MODES:
        reader = ExtractiveReader.from_pretrained(str(reader_dir), batch_size=args.batch_size, quantize=mode,
                                                  show_progress=False, calibration_windows=args.calibration_windows)
        calibration = 0.0
        if reader.needs_calibration:
            start = time.perf_counter()
            reader.calibrate(calibration_questions, calibration_passages)
            calibration = time.perf_counter() - start
        reader.read([q["question"] for q in questions[:2]], passages[:2])  # warm-up (allocator, kernels)
        timings: dict[str, float] = {}
        start = time.perf_counter()
        answers = reader.read([q["question"] for q in questions], passages, timings=timings)
        total = time.perf_counter() - start
        gold_start = time.perf_counter()
        gold_answers = reader.read([q["question"] for q in gold_questions], gold_passages)
        gold_seconds = time.perf_counter() - gold_start
        rows[mode] = {**timings, "total": total, "calibration": calibration,
                      "retrieved": score(answers, questions, references),
                      "gold": score(gold_answers, gold_questions, gold_refs), "gold_seconds": gold_seconds}
        print(mode, rows[mode], flush=True)

    fp = rows["none"]
    overhead = lambda r: r["preprocess"] + r["collate"] + r["postprocess"]  # noqa: E731
    lines = [
        "## Reading: stage times and int8 (`benchmarks/inference_speed.py`)", "",
        f"Command: `flock /tmp/odqa-cpu.lock python benchmarks/inference_speed.py --questions {args.questions} "
        f"--top_k {args.top_k} --gold_questions {args.gold_questions} --batch_size {args.batch_size} "
        f"--calibration_windows {args.calibration_windows}`  ",
        f"Machine: {machine()}.  ",
        f"Reader: {reader_description(reader_dir)}; max_seq_len 384, stride 128.  ",
        f"Data: {len(questions)} random questions of the odd articles of {KORQUAD.name}, bm25 (default) top-{args.top_k} "
        f"over its {len(corpus)} passages, retrieved once: every reader reads the same {int(fp['windows'])} windows. "
        f"The static int8 reader was calibrated on {args.calibration_windows} windows of even-article (training) "
        f"questions." + (f" {MINILM_NOTE}" if "minilm" in reader_description(reader_dir).lower() else ""), "",
        "| stage (seconds) | " + " | ".join(LABEL[m] for m in MODES) + " |",
        "|---|" + "---:|" * len(MODES),
    ]
    for stage in ("preprocess", "collate", "forward", "postprocess", "total"):
        cells = [f"{rows[m][stage]:.2f}" + ("" if m == "none" else f" ({fp[stage] / rows[m][stage]:.2f}x)")
                 for m in MODES]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    lines.append("| calibration (once, before reading) | - | " + " | ".join(
        f"{rows[m]['calibration']:.1f}" if rows[m]["calibration"] else "-" for m in MODES[1:]) + " |")
    lines += [
        "",
        f"- Pre- + post-processing (preprocess + collate + postprocess) = {overhead(fp):.2f} s = "
        f"**{100 * overhead(fp) / fp['forward']:.1f}% of the fp32 forward pass** of the same batches.",
        "- Forward throughput: " + ", ".join(f"{LABEL[m]} {fp['windows'] / rows[m]['forward']:.1f} windows/s"
                                             for m in MODES) + ".",
    ]
    for m in MODES[1:]:
        r = rows[m]
        lines.append(f"- **{LABEL[m]}: forward {fp['forward'] / r['forward']:.2f}x fp32**, whole read "
                     f"{fp['total'] / r['total']:.2f}x; EM/F1 cost on the gold passage ({len(gold_questions)} "
                     f"questions): {fp['gold']['exact_match'] - r['gold']['exact_match']:+.2f} EM / "
                     f"{fp['gold']['f1'] - r['gold']['f1']:+.2f} F1 (positive = int8 is worse).")
    lines += ["", "| quality | " + " | ".join(LABEL[m] for m in MODES) + " |", "|---|" + "---:|" * len(MODES)]
    lines.append(f"| top-{args.top_k} retrieved, {len(questions)} questions: EM / F1 | " + " | ".join(
        f"{rows[m]['retrieved']['exact_match']:.2f} / {rows[m]['retrieved']['f1']:.2f}" for m in MODES) + " |")
    lines.append(f"| gold passage, {len(gold_questions)} questions: EM / F1 | " + " | ".join(
        f"{rows[m]['gold']['exact_match']:.2f} / {rows[m]['gold']['f1']:.2f}" for m in MODES) + " |")
    lines.append("| gold passage: seconds | " + " | ".join(f"{rows[m]['gold_seconds']:.0f}" for m in MODES) + " |")
    text = "\n".join(lines)
    publish("inference_speed", text, args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
