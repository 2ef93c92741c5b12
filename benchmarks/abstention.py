"""Knowing when not to answer, measured: the open-domain case built from the KorQuAD half split by article.

No public Korean unanswerable set is on this machine, so the case is made from what is. The reader is
trained on the EVEN articles only (``benchmarks/korquad_reader.py --train_on even``; never the shipped
reader, which has seen the odd ones). Of the 35 held-out ODD articles, every other one is taken OUT of
the bm25 index, so its questions become unanswerable from that collection:

* odd article i with i % 4 == 1 (1, 5, 9, ...): the CHOOSING half — the threshold is chosen here
  (best overall EM, as the SQuAD 2.0 scorer's search); of it, i % 8 == 1 (1, 9, 17, ...) is removed;
* odd article i with i % 4 == 3 (3, 7, 11, ...): the REPORTING half — the threshold is applied
  unchanged; of it, i % 8 == 3 (3, 11, 19, ...) is removed.

Every odd-article question is read end to end (bm25 top-k over the index without the removed articles,
the threshold off), and those of the reporting half again with their gold passage only (the pure MRC
case, every question answerable);
each question's best answer and its ``no_answer_score`` are kept, so any threshold is post-processing.
Reading is resumable: results are cached per chunk of questions in ``--work_dir`` and a rerun reads only
what is missing (a slow machine can spread the run over sessions).

  flock /tmp/odqa-cpu.lock python benchmarks/abstention.py --reader models/bench/korquad_even_v2
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference_common import read_cached  # noqa: E402
from report import KORQUAD, REPO, machine, publish  # noqa: E402

def article_roles(n_articles: int) -> dict[int, tuple[str, bool]]:
    """{article index: (half, removed)} for the odd (held-out) articles: 'choose' or 'report', and whether
    its passages are out of the index."""
    roles = {}
    for i in range(1, n_articles, 2):
        half = "choose" if i % 4 == 1 else "report"
        roles[i] = (half, i % 8 in (1, 3))
    return roles


def build_questions(payload: dict) -> list[dict]:
    """Every odd-article question with its half, whether it is answerable from the index, gold answers and
    gold passage."""
    roles = article_roles(len(payload["data"]))
    questions = []
    for i, article in enumerate(payload["data"]):
        if i not in roles:
            continue
        half, removed = roles[i]
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                questions.append({"id": qa["id"], "question": qa["question"], "half": half,
                                  "answerable": not removed, "golds": [a["text"] for a in qa["answers"]],
                                  "context": paragraph["context"], "title": article["title"]})
    return questions


def index_without_removed(payload: dict):
    """bm25 (default settings) over every paragraph of the half except those of the removed articles."""
    from odqa.retrieval import get_retriever
    from odqa.retrieval.corpus import Corpus

    roles = article_roles(len(payload["data"]))
    kept = [a for i, a in enumerate(payload["data"]) if not roles.get(i, ("", False))[1]]
    corpus = Corpus.from_mrc_dataset({"version": "abstention", "data": kept}, source=f"{KORQUAD} without removed")
    start = time.perf_counter()
    retriever = get_retriever("bm25").index(corpus)
    return retriever, len(corpus), time.perf_counter() - start


def best_of(answers) -> dict:
    """The best answer's text and no-answer score (what the threshold decides on), plus its other scores, kept
    in the cache so other signals can be studied without reading again."""
    if not answers:
        return {"text": "", "no_answer_score": math.inf}
    best = answers[0]
    return {"text": best.text, "no_answer_score": best.no_answer_score, "score": best.score,
            "reader_score": best.reader_score, "retriever_score": best.retriever_score,
            "probability": best.probability, "passage_rank": best.passage_rank}


def figures(questions: list[dict], read: dict[str, dict], threshold: float | None) -> dict:
    """Overall EM (an abstention on an unanswerable question is exact), HasAns EM, NoAns accuracy, answer rate."""
    from odqa.metrics.squad_v2 import compute_squad_v2

    references = {q["id"]: (q["golds"] if q["answerable"] else []) for q in questions}
    predictions = {q: r["text"] for q, r in read.items() if q in references}
    scores = {q: read[q]["no_answer_score"] for q in references}
    return compute_squad_v2(predictions, references, scores, threshold, metric="korquad_v2")


def choose(questions: list[dict], read: dict[str, dict], max_has_answer_drop: float | None = None) -> float:
    """The threshold `odqa choose-threshold [--max_has_answer_drop N]` picks on these questions."""
    from odqa.metrics.squad_v2 import choose_best_threshold

    references = {q["id"]: (q["golds"] if q["answerable"] else []) for q in questions}
    return choose_best_threshold({q: read[q]["text"] for q in references}, references,
                                 {q: read[q]["no_answer_score"] for q in references}, "korquad_v2",
                                 max_has_answer_drop)


RULES = ((None, "best overall EM"), (5.0, "best overall EM, HasAns EM within 5"),
         (2.0, "best overall EM, HasAns EM within 2"))


def curve(questions: list[dict], read: dict[str, dict]) -> list[tuple[float, float, float, float]]:
    """(threshold, HasAns EM, NoAns accuracy, overall EM) at every distinct score of these questions."""
    scores = sorted({read[q["id"]]["no_answer_score"] for q in questions if math.isfinite(read[q["id"]]["no_answer_score"])})
    points = []
    for t in [scores[0] - 1.0] + scores:
        f = figures(questions, read, t)
        points.append((t, f["HasAns_exact"], f["NoAns_exact"], f["exact"]))
    return points


def plot(points: list[tuple], always: dict, chosen: list[tuple], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot([p[2] for p in points], [p[1] for p in points], lw=1.5, label="thresholds (reporting half)")
    ax.scatter([0.0], [always["HasAns_exact"]], color="black", zorder=3, label="always answer")
    for (label, t, has, no), color in zip(chosen, ("red", "darkorange", "green")):
        ax.scatter([no], [has], color=color, zorder=3, label=f"{label} (chosen on the other half)")
    ax.set_xlabel("NoAns accuracy (unanswerable questions abstained, %)")
    ax.set_ylabel("HasAns EM (%)")
    ax.set_title("odqa abstention, KorQuAD half, bm25 top-5, held-out articles")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reader", required=True, help="a reader trained on the EVEN articles only")
    parser.add_argument("--dataset", default=str(KORQUAD), help="the KorQuAD 1.0 dev half")
    parser.add_argument("--top_k", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--work_dir", default="outputs/abstention", help="chunk cache (reruns resume here)")
    parser.add_argument("--only_read", action="store_true", help="read (and cache) only; no report")
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()
    dataset = Path(args.dataset)
    if not dataset.is_file():
        sys.exit(f"{dataset}: the KorQuAD 1.0 dev half is not there (../shared/data/korquad); pass --dataset FILE.")
    if not (Path(args.reader) / "config.json").is_file():
        sys.exit(f"{args.reader}: not a reader folder; train one with benchmarks/korquad_reader.py --train_on even.")

    from odqa.pipeline import (
        ExtractiveReader,
        PassageToRead,
        ReadOptions,
        passages_from_hits,
    )
    from odqa.retrieval.table import retrieve_hits

    payload = json.loads(dataset.read_text(encoding="utf-8"))
    questions = build_questions(payload)
    retriever, passages, index_seconds = index_without_removed(payload)
    reader = ExtractiveReader.from_pretrained(args.reader, batch_size=args.batch_size, show_progress=False)
    options = ReadOptions(no_answer_threshold=None)  # always answer: thresholds are applied afterwards
    work = Path(args.work_dir) / f"{Path(args.reader).name}_top{args.top_k}"
    work.mkdir(parents=True, exist_ok=True)

    def read_retrieved(chunk: list[dict]) -> dict[str, dict]:
        hits = retrieve_hits(retriever, [{"id": q["id"], "question": q["question"]} for q in chunk], args.top_k)
        answers = reader.read([q["question"] for q in chunk], passages_from_hits(hits), options)
        return {q["id"]: best_of(a) for q, a in zip(chunk, answers)}

    def read_gold(chunk: list[dict]) -> dict[str, dict]:
        answers = reader.read([q["question"] for q in chunk],
                              [[PassageToRead(q["id"], q["context"], q["title"])] for q in chunk], options)
        return {q["id"]: best_of(a) for q, a in zip(chunk, answers)}

    halves = {h: [q for q in questions if q["half"] == h] for h in ("choose", "report")}
    start = time.perf_counter()
    retrieved = read_cached("retrieved", questions, work, read_retrieved)
    gold = read_cached("gold", halves["report"], work, read_gold)  # the threshold is only applied there
    minutes = (time.perf_counter() - start) / 60
    if args.only_read:
        return 0

    report = halves["report"]
    gold_questions = [{**q, "answerable": True} for q in report]
    always, gold_always = figures(report, retrieved, None), figures(gold_questions, gold, None)
    rules = []
    for drop, label in RULES:
        threshold = choose(halves["choose"], retrieved, drop)
        rules.append({"rule": label, "max_has_answer_drop": drop, "threshold": threshold,
                      "chosen": figures(report, retrieved, threshold), "gold": figures(gold_questions, gold, threshold)})
    points = curve(report, retrieved)
    image = plot(points, always, [(r["rule"], r["threshold"], r["chosen"]["HasAns_exact"], r["chosen"]["NoAns_exact"])
                                  for r in rules], REPO / "benchmarks" / "results" / "abstention_curve.png")
    result = {"always": always, "gold_always": gold_always, "rules": rules, "curve": points,
              "reading_minutes": minutes}
    (work / "result.json").write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str), encoding="utf-8")

    n_no = sum(1 for q in report if not q["answerable"])
    lines = [
        "## Abstention: questions the collection cannot answer (`benchmarks/abstention.py`)", "",
        f"Command: `flock /tmp/odqa-cpu.lock python benchmarks/abstention.py --reader {args.reader} --top_k {args.top_k}`  ",
        f"Machine: {machine()}.  ",
        f"Reader: `{Path(args.reader).name}` (trained on the even articles only). Index: bm25 (defaults) over "
        f"{passages} passages of the half without the removed odd articles ({index_seconds:.1f} s). Questions: "
        f"{len(questions)} of the odd articles; choosing half {len(halves['choose'])}, reporting half {len(report)} "
        f"({n_no} of them unanswerable from the index). Each threshold (on `no_answer_score`) is chosen on the "
        "choosing half by `odqa choose-threshold`'s rule (`--max_has_answer_drop N` for the limited ones) and "
        f"applied unchanged here. Reading: {minutes:.1f} min in this run (chunks read by earlier runs are cached "
        "and not counted).", "",
        "| reporting half, bm25 top-5 | threshold | overall EM | HasAns EM | NoAns accuracy | answer rate | "
        "gold passage EM |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| always answer (no threshold) | – | {always['exact']:.2f} | {always['HasAns_exact']:.2f} | "
        f"{always['NoAns_exact']:.2f} | {always['answer_rate']:.1f} | {gold_always['exact']:.2f} |",
    ]
    for r in rules:
        c, g = r["chosen"], r["gold"]
        lines.append(f"| {r['rule']} | {r['threshold']:.3f} | **{c['exact']:.2f}** ({c['exact'] - always['exact']:+.1f}) "
                     f"| {c['HasAns_exact']:.2f} ({c['HasAns_exact'] - always['HasAns_exact']:+.1f}) | "
                     f"{c['NoAns_exact']:.2f} | {c['answer_rate']:.1f} | {g['exact']:.2f} "
                     f"({g['exact'] - gold_always['exact']:+.1f}) |")
    lines += [
        "", "Goals: overall EM ≥ always answering + 20 with HasAns EM within 5 of it; on gold passages (every "
        "question answerable, the same threshold) no more than 2 EM lost.", "",
        f"![HasAns EM vs NoAns accuracy](benchmarks/results/{image.name})",
    ]
    publish("abstention", "\n".join(lines), args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
