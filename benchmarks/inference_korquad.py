"""End-to-end ODQA on the KorQuAD 1.0 dev half split by article: EM/F1 and questions/s per k.

The reader was fine-tuned on the EVEN articles (benchmarks/reader_learning.py); questions of the
ODD articles are answered against ALL the half's passages with bm25 (default settings) top-k, for
each k, through the stages of ``ODQAPipeline.run`` (the code `odqa infer` runs), scoring spans with
each ``--retriever_weights`` value (span score = reader score + w x bm25 score). Next to it: the same
reader given each question's gold passage (the reader's ceiling without retrieval errors).

With ``--articles even`` the questions come from the articles the reader trained on: that run is
where the default retriever weight is chosen (``--retriever_weights`` grid), never on the odd ones.
``--retriever dense`` / ``hybrid`` swap bm25 for the dense retriever (``--dense_model``, e.g. an encoder
trained by train_dpr.py) or bm25 + dense (z-score fusion, bm25's share ``--fusion_weight``, chosen by
benchmarks/dense_retrieval.py on the even articles).
``--latency_questions N`` also times N single questions at k=5 through ``ODQAPipeline`` (p50/p95).

  flock /tmp/odqa-cpu.lock python benchmarks/inference_korquad.py --articles even --ks 5 20 \
      --retriever_weights 0 0.02 0.05 0.1 0.2
  flock /tmp/odqa-cpu.lock python benchmarks/inference_korquad.py --questions 100 --ks 1 5 10 20
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reader", help="reader folder (default: the one benchmarks/reader_learning.py saves)")
    parser.add_argument("--questions", type=int, default=100, help="random odd-article questions (0 = all)")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--retriever_weights", type=float, nargs="+", default=[0.0, 0.2],
                        help="span score = reader score + w x bm25 score; one read per k serves every w")
    parser.add_argument("--quantize", default="none", choices=["none", "int8", "int8-dynamic"],
                        help="int8 is calibrated on 128 windows of even-article (training) questions")
    parser.add_argument("--articles", default="odd", choices=["odd", "even"],
                        help="odd: held-out questions; even: the reader's training articles (to choose settings)")
    parser.add_argument("--retriever", default="bm25", choices=["bm25", "dense", "hybrid"],
                        help="bm25 (default settings), dense (--dense_model) or hybrid (bm25 + dense, zscore)")
    parser.add_argument("--dense_model", default="e5-small", help="dense/hybrid: encoder or trained dual encoder")
    parser.add_argument("--fusion_weight", type=float, default=0.8, help="hybrid: bm25's share (zscore fusion)")
    parser.add_argument("--passage_window", type=int, default=0,
                        help="dense/hybrid: score passages by their best window of this many tokens (0: whole)")
    parser.add_argument("--latency_questions", type=int, default=0,
                        help="also time this many single questions at k=5 through ODQAPipeline (p50/p95)")
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()

    from odqa.metrics import compute_metrics
    from odqa.data.loading import read_mrc_rows
    from odqa.metrics.cli import references_of
    from odqa.pipeline import ExtractiveReader, PassageToRead, passages_from_hits
    from odqa.pipeline.outputs import evaluate_result
    from odqa.pipeline.pipeline import PipelineResult
    from odqa.retrieval import get_retriever, load_questions
    from odqa.retrieval.table import retrieve_hits
    from odqa.retrieval.corpus import context_id

    reader_dir = find_reader(args.reader)
    tmp = Path(tempfile.mkdtemp(prefix="odqa_infer_korquad_"))
    parity = 1 if args.articles == "odd" else 0
    qfile = odd_article_questions(tmp / "q.json", args.questions or None, seed=0, parity=parity)
    mrc_rows = read_mrc_rows(qfile)
    questions = load_questions(qfile)
    references = references_of(mrc_rows)
    corpus = half_corpus()
    start = time.perf_counter()
    bm25 = get_retriever("bm25")
    dense = get_retriever("dense", model=args.dense_model, show_progress=True, passage_window=args.passage_window)
    retriever = {"bm25": bm25, "dense": dense,
                 "hybrid": get_retriever("hybrid", first=bm25, second=dense, fusion="zscore",
                                         weight=args.fusion_weight)}[args.retriever].index(corpus)
    index_seconds = time.perf_counter() - start
    retriever.retrieve([questions[0]["question"]], 1)  # warm-up: the Kiwi tokenizer loads on first use
    reader = ExtractiveReader.from_pretrained(str(reader_dir), batch_size=args.batch_size, quantize=args.quantize,
                                              show_progress=True)
    if reader.needs_calibration:
        reader.calibrate(*even_article_windows_source(reader.calibration_windows))

    rows = []
    gold_rows = mrc_rows
    gold_timings: dict[str, float] = {}
    start = time.perf_counter()
    gold_answers = reader.read([r["question"] for r in gold_rows],
                               [[PassageToRead(context_id(r["context"]), r["context"], r["title"])] for r in gold_rows],
                               timings=gold_timings)
    gold_seconds = time.perf_counter() - start
    gold = compute_metrics({r["id"]: (a[0].text if a else "") for r, a in zip(gold_rows, gold_answers)}, references)
    rows.append(("gold passage", gold["exact_match"], gold["f1"], None, len(gold_rows) / gold_seconds,
                 gold_timings["windows"] / len(gold_rows)))
    print(rows[-1], flush=True)
    texts = [q["question"] for q in questions]
    windows = f", best {args.passage_window}-token window" if args.passage_window else ""
    retriever_name = {"bm25": "bm25", "dense": f"dense `{args.dense_model}`{windows}",
                      "hybrid": f"bm25 + dense `{args.dense_model}`{windows} (zscore, bm25 share {args.fusion_weight:g})"
                      }[args.retriever]
    for k in args.ks:
        # the stages of ODQAPipeline.run, with post-processing repeated per retriever weight (it is ~1% of the time)
        start = time.perf_counter()
        hits = retrieve_hits(retriever, questions, k)
        examples, segments = reader.build_examples(texts, passages_from_hits(hits))
        features = reader.featurize(examples)
        logits = reader.forward(features)
        weights = args.retriever_weights[:1] if k == 1 else args.retriever_weights  # one passage: w changes nothing
        answers = {w: reader.postprocess(examples, features, logits, segments, len(texts), w) for w in weights}
        seconds = time.perf_counter() - start
        for w, answers_w in answers.items():
            metrics = evaluate_result(PipelineResult(questions, hits, answers_w), mrc_rows, corpus, k)
            rows.append((f"{retriever_name} top-{k}, retriever weight {w:g}", metrics["exact_match"], metrics["f1"],
                         metrics["retrieval"].get(f"recall@{k}"), len(questions) / seconds, len(features) / len(questions)))
            print(rows[-1], flush=True)

    latency = None
    if args.latency_questions:
        import numpy as np

        from odqa.pipeline.pipeline import ODQAPipeline

        pipe = ODQAPipeline(retriever, reader)
        reader.show_progress = False
        seconds = []
        for q in questions[:args.latency_questions]:
            start = time.perf_counter()
            pipe(q["question"], top_k=5)
            seconds.append(time.perf_counter() - start)
        latency = (len(seconds), float(np.percentile(seconds, 50)), float(np.percentile(seconds, 95)))
        print("latency", latency, flush=True)

    held_out = args.articles == "odd"
    lines = [
        "## End to end on KorQuAD, split by article" + ("" if held_out else ", TRAINING articles (choosing the weight)")
        + ("" if args.quantize == "none" else f", reader {args.quantize}")
        + ("" if args.retriever == "bm25" else f", {args.retriever} retrieval") + " (`benchmarks/inference_korquad.py`)", "",
        f"Command: `flock /tmp/odqa-cpu.lock python benchmarks/inference_korquad.py --articles {args.articles} "
        f"--questions {args.questions} --ks {' '.join(map(str, args.ks))} --batch_size {args.batch_size} "
        f"--quantize {args.quantize} --retriever_weights {' '.join(f'{w:g}' for w in args.retriever_weights)}"
        + (f" --latency_questions {args.latency_questions}" if args.latency_questions else "")
        + ("" if args.retriever == "bm25" else f" --retriever {args.retriever} --dense_model {args.dense_model}"
           + (f" --fusion_weight {args.fusion_weight:g}" if args.retriever == "hybrid" else "")
           + (f" --passage_window {args.passage_window}" if args.passage_window else "")) + "`  ",
        f"Machine: {machine()}.  ",
        f"Reader: {reader_description(reader_dir)}; max_seq_len 384, stride 128, per-passage reading, "
        f"quantize {args.quantize}.  ",
        f"Questions: {len(questions)} random questions (seed 0) of the {args.articles.upper()} articles of "
        f"{KORQUAD.name}{'' if held_out else ' (the reader trained on them)'}; corpus: all {len(corpus)} passages of "
        f"the half; {retriever_name} (index built in {index_seconds:.1f} s)."
        + (f" {MINILM_NOTE}" if "minilm" in reader_description(reader_dir).lower() else ""), "",
        "| passages read | EM | F1 | recall@k | questions/s | windows/question |", "|---|---:|---:|---:|---:|---:|",
    ]
    for name, em, f1, recall, qps, windows in rows:
        lines.append(f"| {name} | {em:.2f} | {f1:.2f} | {'-' if recall is None else f'{recall:.1f}'} | {qps:.2f} | "
                     f"{windows:.1f} |")
    lines += ["", "questions/s covers retrieval + reading (tokenization, forward, post-processing for every weight) "
              "after the models are loaded; the forward pass is nearly all of it (see the stage table). The retriever "
              "weight only changes how spans of different passages are compared (`--retriever_weight` of `odqa infer`)."]
    if latency is not None:
        lines += ["", f"One question at a time through `ODQAPipeline` (bm25 top-5, quantize {args.quantize}, "
                  f"{latency[0]} questions): latency p50 **{latency[1]:.3f} s**, p95 {latency[2]:.3f} s."]
    text = "\n".join(lines)
    publish("inference_korquad" + ("" if held_out else "_even")
                       + ("" if args.quantize == "none" else f"_{args.quantize}")
                       + ("" if args.retriever == "bm25" else f"_{args.retriever}")
                       + ("_windows" if args.passage_window and args.retriever != "bm25" else ""), text, args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
