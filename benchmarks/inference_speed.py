"""Where reading time goes, and what int8 buys: stage timings of the SAME batches, fp32 vs int8.

Questions of the odd KorQuAD-half articles, bm25 top-k over all the half's passages (retrieved
once, so both readers read exactly the same windows). For each reader the stages are timed
inside one ``ExtractiveReader.read`` call: preprocess (examples + tokenization into windows),
collate (length sorting + padding), forward (the model), postprocess (spans, ranking).
Then both readers read each question's GOLD passage (more questions, cheap) for the EM/F1 cost
of int8.

  flock /tmp/odqa-cpu.lock python benchmarks/inference_speed.py --questions 40 --top_k 5 --gold_questions 300
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference_common import (MINILM_NOTE, KORQUAD, find_reader, half_corpus, machine, odd_article_questions,  # noqa: E402
                              reader_description, update_section)


def score(answers, questions, references):
    from odqa.metrics import compute_metrics

    predictions = {q["id"]: (a[0].text if a else "") for q, a in zip(questions, answers)}
    return compute_metrics(predictions, {q["id"]: references[q["id"]] for q in questions})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reader", help="reader folder (default: newest /tmp/odqa_reader_bench_*/reader)")
    parser.add_argument("--questions", type=int, default=40, help="questions read against their top-k passages")
    parser.add_argument("--top_k", type=int, default=5)
    parser.add_argument("--gold_questions", type=int, default=300, help="questions read against their gold passage")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--no_write", action="store_true", help="print only, do not update the results file")
    args = parser.parse_args()

    from odqa.metrics.cli import load_references
    from odqa.pipeline import ExtractiveReader, PassageToRead, passages_from_table
    from odqa.retrieval import get_retriever, load_questions, retrieve_table
    from odqa.retrieval.corpus import context_id
    from odqa.retrieval.questions import load_mrc_examples

    reader_dir = find_reader(args.reader)
    tmp = Path(tempfile.mkdtemp(prefix="odqa_infer_speed_"))
    corpus = half_corpus()
    retriever = get_retriever("bm25").index(corpus)
    qfile = odd_article_questions(tmp / "q.json", args.questions, seed=0)
    questions = load_questions(qfile)
    references = load_references(str(qfile))
    passages = passages_from_table(retrieve_table(retriever, questions, args.top_k), corpus)
    gfile = odd_article_questions(tmp / "g.json", args.gold_questions, seed=1)
    gold_rows = load_mrc_examples(gfile)
    gold_questions = [{"id": r["id"], "question": r["question"]} for r in gold_rows]
    gold_refs = load_references(str(gfile))
    gold_passages = [[PassageToRead(context_id(r["context"]), r["context"], r["title"])] for r in gold_rows]

    rows = {}
    for mode in ("none", "int8"):
        reader = ExtractiveReader.from_pretrained(str(reader_dir), batch_size=args.batch_size, quantize=mode,
                                                  show_progress=False)
        reader.read([q["question"] for q in questions[:2]], passages[:2])  # warm-up (allocator, kernels)
        timings: dict[str, float] = {}
        start = time.perf_counter()
        answers = reader.read([q["question"] for q in questions], passages, timings=timings)
        total = time.perf_counter() - start
        gold_start = time.perf_counter()
        gold_answers = reader.read([q["question"] for q in gold_questions], gold_passages)
        gold_seconds = time.perf_counter() - gold_start
        rows[mode] = {**timings, "total": total, "retrieved": score(answers, questions, references),
                      "gold": score(gold_answers, gold_questions, gold_refs), "gold_seconds": gold_seconds}
        print(mode, {k: v for k, v in rows[mode].items()}, flush=True)

    fp, q8 = rows["none"], rows["int8"]
    overhead = lambda r: r["preprocess"] + r["collate"] + r["postprocess"]  # noqa: E731
    lines = [
        "## Reading: stage times and int8 (`benchmarks/inference_speed.py`)", "",
        f"Command: `flock /tmp/odqa-cpu.lock python benchmarks/inference_speed.py --questions {args.questions} "
        f"--top_k {args.top_k} --gold_questions {args.gold_questions} --batch_size {args.batch_size}`  ",
        f"Machine: {machine()}.  ",
        f"Reader: {reader_description(reader_dir)}; max_seq_len 384, stride 128.  ",
        f"Data: {len(questions)} random questions of the odd articles of {KORQUAD.name}, bm25 (default) top-{args.top_k} "
        f"over its {len(corpus)} passages, retrieved once: both readers read the same {int(fp['windows'])} windows. "
        f"{MINILM_NOTE}", "",
        "| stage | fp32 s | int8 s | fp32/int8 |", "|---|---:|---:|---:|",
    ]
    for stage in ("preprocess", "collate", "forward", "postprocess", "total"):
        lines.append(f"| {stage} | {fp[stage]:.2f} | {q8[stage]:.2f} | {fp[stage] / q8[stage]:.2f}x |")
    lines += [
        "",
        f"- Pre- + post-processing (preprocess + collate + postprocess) = {overhead(fp):.2f} s = "
        f"**{100 * overhead(fp) / fp['forward']:.1f}% of the fp32 forward pass** of the same batches "
        f"({100 * overhead(q8) / q8['forward']:.1f}% of the int8 one).",
        f"- Forward throughput: fp32 {fp['windows'] / fp['forward']:.1f} windows/s, int8 "
        f"{q8['windows'] / q8['forward']:.1f} windows/s: **int8 forward {fp['forward'] / q8['forward']:.2f}x fp32**, "
        f"whole read {fp['total'] / q8['total']:.2f}x.",
        f"- Quality, top-{args.top_k} retrieved ({len(questions)} questions): fp32 EM {fp['retrieved']['exact_match']:.2f} / "
        f"F1 {fp['retrieved']['f1']:.2f}, int8 EM {q8['retrieved']['exact_match']:.2f} / F1 {q8['retrieved']['f1']:.2f}.",
        f"- Quality, gold passage ({len(gold_questions)} questions): fp32 EM {fp['gold']['exact_match']:.2f} / "
        f"F1 {fp['gold']['f1']:.2f} ({fp['gold_seconds']:.0f} s), int8 EM {q8['gold']['exact_match']:.2f} / "
        f"F1 {q8['gold']['f1']:.2f} ({q8['gold_seconds']:.0f} s): int8 costs "
        f"{fp['gold']['exact_match'] - q8['gold']['exact_match']:+.2f} EM / {fp['gold']['f1'] - q8['gold']['f1']:+.2f} F1 "
        "(positive = int8 is worse).",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        update_section("inference_speed", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
