"""Retrieval: corpora, tokenizers, retrievers (bm25, tfidf, csv, hybrid), evaluation.

    from odqa.retrieval import load_corpus, get_retriever, load_retriever, retrieve_table
    retriever = get_retriever("bm25", tokenizer="kiwi+bigram").index(load_corpus("wiki.json"))
    hits = retriever.retrieve(["질문"], top_k=10)   # [[Hit(passage_id, score, rank), ...]]
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Hit": "odqa.retrieval.base",
    "Retriever": "odqa.retrieval.base",
    "Passage": "odqa.retrieval.corpus",
    "Corpus": "odqa.retrieval.corpus",
    "load_corpus": "odqa.retrieval.corpus",
    "split_corpus": "odqa.retrieval.splitting",
    "make_tokenizer": "odqa.retrieval.tokenizers",
    "DEFAULT_TOKENIZER": "odqa.retrieval.tokenizers",
    "BM25Retriever": "odqa.retrieval.bm25",
    "TfidfRetriever": "odqa.retrieval.tfidf",
    "CsvRetriever": "odqa.retrieval.csv_replay",
    "HybridRetriever": "odqa.retrieval.hybrid",
    "get_retriever": "odqa.retrieval.registry",
    "load_retriever": "odqa.retrieval.registry",
    "register_retriever": "odqa.retrieval.registry",
    "retrieve_hits": "odqa.retrieval.table",
    "retrieve_table": "odqa.retrieval.table",
    "write_table_csv": "odqa.retrieval.table",
    "load_questions": "odqa.retrieval.questions",
    "evaluate_retriever": "odqa.retrieval.evaluation",
    "retrieval_metrics": "odqa.retrieval.evaluation",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'odqa.retrieval' has no attribute {name!r}")
