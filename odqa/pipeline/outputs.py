"""What `odqa infer` writes and prints: prediction files, the replayable retrieval CSV, metrics, a summary."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from odqa.pipeline.pipeline import PipelineResult

PREDICTIONS_FILE = "predictions.json"
NBEST_FILE = "nbest_predictions.json"
RETRIEVED_FILE = "retrieved.csv"
METRICS_FILE = "metrics.json"
RECALL_CUTOFFS = (1, 5, 10, 20)


def write_outputs(result: PipelineResult, output_dir: str | os.PathLike) -> list[Path]:
    """predictions.json, nbest_predictions.json and retrieved.csv (replay it with `--retriever_type csv`)."""
    from odqa.reader.postprocessing import write_predictions
    from odqa.retrieval.table import write_table_csv

    output_dir = Path(output_dir)
    write_predictions(result.predictions(), result.nbest(), output_dir)
    write_table_csv(result.table, output_dir / RETRIEVED_FILE)
    return [output_dir / name for name in (PREDICTIONS_FILE, NBEST_FILE, RETRIEVED_FILE)]


def recall_cutoffs(top_k: int) -> list[int]:
    return sorted({k for k in RECALL_CUTOFFS if k <= top_k} | {top_k})


def evaluate_result(result: PipelineResult, rows: Sequence[dict[str, Any]], corpus, top_k: int,
                    metric: str = "korquad", read_mode: str = "passage", score_ratio: float = 0.0) -> dict[str, Any]:
    """EM/F1 exactly as `odqa evaluate` computes them, plus retrieval recall@k of the table actually read, and
    (``read_mode`` passage) the reader alone on each question's gold passage, from the same read.

    ``rows``: the dataset's parsed MRC rows (:func:`odqa.retrieval.questions.load_question_rows`), the ones the
    questions came from; only the questions asked are scored (--max_samples, one split).
    """
    from odqa.metrics import compute_metrics
    from odqa.metrics.cli import V2_METRICS, references_of, score_v2
    from odqa.retrieval.evaluation import questions_with_gold, retrieval_metrics

    predictions = result.predictions()
    if metric in V2_METRICS:  # unanswerable questions count; the best threshold from the no-answer scores
        asked = [r for r in rows if r["id"] in predictions]
        scores: dict[str, Any] = score_v2(asked, predictions, metric, result.no_answer_scores())
    else:
        references = references_of(rows)
        scores = compute_metrics(predictions, {q: references[q] for q in predictions if q in references},
                                 metric=metric)
    hits_of = {q["id"]: hits for q, hits in zip(result.questions, result.hits)}
    gold = questions_with_gold([r for r in rows if r["id"] in hits_of], corpus)
    scores["retrieval"] = retrieval_metrics([hits_of[q.id] for q in gold], gold, corpus, recall_cutoffs(top_k))
    if read_mode == "passage":
        gold_scores = gold_passage_metrics(result, gold, metric.removesuffix("_v2"), score_ratio)
        if gold_scores is not None:
            scores["gold_passage"] = gold_scores
    return scores


def gold_passage_metrics(result: PipelineResult, gold: Sequence, metric: str,
                         score_ratio: float = 0.0) -> dict[str, Any] | None:
    """EM/F1 of the reader alone on each question's gold passage, for the answerable questions whose gold
    passage was among those read: its best span there (the n-best keeps every passage's best; within one
    passage the retriever weight adds the same amount to every span, so the order is the reader's). The same
    figure as reading the gold passages on their own, without reading them twice; always answering.
    None when no such question was asked. ``score_ratio``: the pipeline's passage cut (what was read)."""
    from odqa.metrics import compute_metrics
    from odqa.pipeline.pipeline import hits_to_read

    answers_of = {q["id"]: answers for q, answers in zip(result.questions, result.answers)}
    hits_of = {q["id"]: {str(h.passage_id) for h in hits_to_read(hits, score_ratio)}
               for q, hits in zip(result.questions, result.hits)}
    read = [q for q in gold if q.answers and q.gold_ids & hits_of.get(q.id, set())]
    if not read:
        return None
    predictions = {q.id: next((a.text for a in answers_of[q.id] if a.passage_id in q.gold_ids), "") for q in read}
    scores = compute_metrics(predictions, {q.id: q.answers for q in read}, metric=metric)
    return {"exact_match": scores["exact_match"], "f1": scores["f1"], "questions": len(read),
            "of": sum(1 for q in gold if q.answers)}


def format_summary(result: PipelineResult, metrics: dict[str, Any] | None, run_info: dict[str, Any],
                   references: dict[str, Sequence[str]] | None = None, num_examples: int = 3) -> str:
    """A few readable lines: speed, EM/F1, recall@k, and a few questions with their top passages and answers."""
    seconds = result.timings.get("total", 0.0)
    n = len(result.questions)
    lines = [f"{n} questions, {run_info['retriever']} top-{run_info['top_k_retrieval']}, {run_info['read_mode']} "
             f"reading, {seconds:.1f} s ({n / seconds if seconds else 0:.2f} questions/s)"]
    if metrics is not None:
        if "exact" in metrics:  # SQuAD 2.0 accounting
            parts = [f"EM {metrics['exact']:.2f}  F1 {metrics['f1']:.2f}  ({metrics['metric']} rules, "
                     f"{metrics['total']} scored questions, answer rate {metrics['answer_rate']:.1f}%)"]
            if "HasAns_exact" in metrics:
                parts.append(f"HasAns EM {metrics['HasAns_exact']:.2f} ({metrics['HasAns_total']})")
            if "NoAns_exact" in metrics:
                parts.append(f"NoAns accuracy {metrics['NoAns_exact']:.2f} ({metrics['NoAns_total']})")
            if "best_exact" in metrics:
                parts.append(f"best EM {metrics['best_exact']:.2f} at threshold {metrics['best_exact_thresh']:.3g}")
            lines.append("  ".join(parts))
        else:
            lines.append(f"EM {metrics['exact_match']:.2f}  F1 {metrics['f1']:.2f}  ({metrics['metric']} rules, "
                         f"{metrics['total']} scored questions)")
        if "gold_passage" in metrics:
            g = metrics["gold_passage"]
            lines.append(f"the reader alone, on the gold passage: EM {g['exact_match']:.2f}  F1 {g['f1']:.2f}  "
                         f"({g['questions']} of {g['of']} answerable questions had it among the passages read; "
                         "scored from the same read)")
        retrieval = metrics.get("retrieval", {})
        recalls = [f"recall@{k.split('@')[1]} {v:.1f}" for k, v in retrieval.items() if k.startswith("recall@")]
        if recalls:
            lines.append("retrieval: " + "  ".join(recalls) + f"  ({retrieval.get('questions_with_gold_passage', 0)} "
                         "questions with a gold passage in the corpus)")
    for q, answers, titles in list(zip(result.questions, result.answers, _titles(result)))[:num_examples]:
        lines.append(f"Q: {q['question']}")
        if references is not None and references.get(q["id"]):
            lines.append(f"   gold:   {references[q['id']][0]}")
        best = answers[0] if answers else None
        if best is None:
            lines.append("   answer: no answer found (the reader found no span in the passages read)")
        elif best.no_answer:
            lines.append(f"   answer: no answer found (no_answer_score {best.no_answer_score:.3g} is above the "
                         f"threshold; best guess {best.text!r} from {best.title or best.passage_id})")
        else:
            lines.append(f"   answer: {best.text!r} (from {best.title or best.passage_id}, score "
                         f"{format_score(best.score)})")
        lines.append("   top passages: " + " | ".join(titles[:3]))
    return "\n".join(lines)


def format_score(score: float) -> str:
    """Four significant digits: enough to tell passages apart on any retriever's scale
    (bm25 ``23.46``, tf-idf cosine ``0.1234``, dense inner product ``0.8123``)."""
    return f"{score:.4g}"


def _titles(result: PipelineResult) -> list[list[str]]:
    """Per question, its retrieved passages as 'title (score)' (the passage id when there is no title)."""
    return [[f"{(h.passage.title if h.passage else '') or h.passage_id} ({format_score(h.score)})" for h in hits]
            for hits in result.hits]
