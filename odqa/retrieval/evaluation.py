"""Retrieval metrics: recall@k (a gold passage in the top k), answer-recall@k (an answer string
inside a retrieved passage) and MRR@k, in percent, plus index time and query throughput."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from odqa.data.loading import answer_texts
from odqa.retrieval.base import Hit, Retriever
from odqa.retrieval.corpus import Corpus, context_id


@dataclass
class EvalQuestion:
    id: str
    question: str
    gold_ids: set[str] = field(default_factory=set)
    answers: list[str] = field(default_factory=list)


def questions_with_gold(examples: list[dict[str, Any]], corpus: Corpus) -> list[EvalQuestion]:
    """Gold passage = the corpus passage whose text is the question's own context (if there is one)."""
    by_text: dict[str, str] = {}
    for p in corpus:
        by_text.setdefault(" ".join(p.text.split()), p.id)
    out = []
    for ex in examples:
        cid = context_id(ex["context"])
        gold = {cid} if cid in corpus else set()
        if not gold and (pid := by_text.get(" ".join(ex["context"].split()))):
            gold = {pid}
        out.append(EvalQuestion(ex["id"], ex["question"], {corpus.merged.get(g, g) for g in gold},
                                answer_texts(ex)))
    return out


def retrieval_metrics(rankings: Sequence[list[Hit]], questions: Sequence[EvalQuestion], corpus: Corpus,
                      top_ks: Sequence[int]) -> dict[str, float]:
    """Pure scoring of given rankings. Recall/MRR use only questions that have a gold passage."""
    with_gold = [(r, q) for r, q in zip(rankings, questions) if q.gold_ids]
    with_answer = [(r, q) for r, q in zip(rankings, questions) if q.answers]
    metrics: dict[str, float] = {}
    for k in sorted(set(top_ks)):
        if with_gold:
            hit_ranks = [next((h.rank for h in r[:k] if h.passage_id in q.gold_ids), None) for r, q in with_gold]
            metrics[f"recall@{k}"] = 100.0 * sum(x is not None for x in hit_ranks) / len(with_gold)
            metrics[f"mrr@{k}"] = 100.0 * sum(1.0 / x for x in hit_ranks if x is not None) / len(with_gold)
        if with_answer:
            found = sum(any(a in corpus[h.passage_id].text for h in r[:k] for a in q.answers) for r, q in with_answer)
            metrics[f"answer_recall@{k}"] = 100.0 * found / len(with_answer)
    metrics["questions"] = len(questions)
    metrics["questions_with_gold_passage"] = len(with_gold)
    return metrics


def evaluate_retriever(retriever: Retriever, questions: Sequence[EvalQuestion], top_ks: Sequence[int],
                       batch_size: int = 4096, show_progress: bool | None = None) -> dict[str, float]:
    """Retrieve top max(k) for every question (timed after a one-query warm-up) and score.

    ``show_progress``: a bar over the question batches (None: only for long evaluations).
    """
    from tqdm.auto import tqdm

    from odqa.utils.progress import wants_progress

    k_max = max(top_ks)
    texts = [q.question for q in questions]
    if texts:
        retriever.retrieve(texts[:1], k_max)  # warm-up: JIT compilation and lazy loading are not throughput
    start = time.perf_counter()
    rankings: list[list[Hit]] = []
    with tqdm(total=len(texts), desc="retrieving", unit="question",
              disable=not wants_progress(show_progress, len(texts), min_items=2 * batch_size)) as bar:
        for i in range(0, len(texts), batch_size):
            rankings.extend(retriever.retrieve(texts[i:i + batch_size], k_max))
            bar.update(len(texts[i:i + batch_size]))
    seconds = time.perf_counter() - start
    metrics = retrieval_metrics(rankings, questions, retriever.corpus, top_ks)
    metrics["retrieve_seconds"] = seconds
    metrics["queries_per_second"] = len(texts) / seconds if seconds > 0 else float("inf")
    return metrics
