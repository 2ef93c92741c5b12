"""Retrievers by name: a name -> "module:Class" table plus the aliases users already type.

Entries are import strings so that registering ``dense`` does not import torch until used.
Plug-ins add themselves with ``register_retriever("name", "module:Class")``.
"""
from __future__ import annotations

import importlib
import os
from typing import Any

from odqa.errors import ConfigError, IndexLoadError
from odqa.retrieval.base import read_index_meta

RETRIEVERS: dict[str, str] = {
    "bm25": "odqa.retrieval.bm25:BM25Retriever",
    "tfidf": "odqa.retrieval.tfidf:TfidfRetriever",
    "csv": "odqa.retrieval.csv_replay:CsvRetriever",
    "hybrid": "odqa.retrieval.hybrid:HybridRetriever",
    "dense": "odqa.retrieval.dense:DenseRetriever",
    "elasticsearch": "odqa.retrieval.es.retriever:ElasticsearchRetriever",
}

# alias (lower case) -> (registered name, parameters the alias implies)
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "sparseretrieval_bm25p": ("bm25", {"variant": "bm25+"}),
    "sparseretrieval_bm25": ("bm25", {"variant": "okapi"}),
    "sparseretrieval_bm25l": ("bm25", {"variant": "bm25l"}),
    "bm25p": ("bm25", {"variant": "bm25+"}),
    "bm25+": ("bm25", {"variant": "bm25+"}),
    "bm25l": ("bm25", {"variant": "bm25l"}),
    "bm25s": ("bm25", {}),
    "sparseretrieval_tfidf": ("tfidf", {}),
    "sparseretrieval": ("tfidf", {}),
    "tf-idf": ("tfidf", {}),
    "denseretrieval": ("dense", {}),
    "dpr": ("dense", {}),
    "get_retrieved_df": ("csv", {}),
    "elastic": ("elasticsearch", {}),
    "es": ("elasticsearch", {}),
    "es_retrieval": ("elasticsearch", {}),  # the competition code's new_es_retrieval.es_retrieval()
    "elasticsearchretriever": ("elasticsearch", {}),  # Haystack's name
}


def register_retriever(name: str, target: str, aliases: dict[str, dict[str, Any]] | None = None) -> None:
    """Add ``name`` -> ``"module:Class"`` (and optional aliases with implied parameters)."""
    RETRIEVERS[name.lower()] = target
    for alias, params in (aliases or {}).items():
        ALIASES[alias.lower()] = (name.lower(), params)


def resolve_name(name: str) -> tuple[str, dict[str, Any]]:
    """Canonical registered name and the parameters an alias implies."""
    key = name.strip().lower()
    canonical, implied = ALIASES.get(key, (key, {}))
    if canonical not in RETRIEVERS:
        known = sorted(RETRIEVERS) + sorted(a for a in ALIASES if ALIASES[a][0] in RETRIEVERS)
        raise ConfigError(f"unknown retriever {name!r}; choose one of {', '.join(known)}.")
    return canonical, dict(implied)


def retriever_class(name: str) -> type:
    canonical, _ = resolve_name(name)
    module_name, _, class_name = RETRIEVERS[canonical].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def get_retriever(name: str, **params: Any) -> Any:
    """A new, un-indexed retriever; explicit ``params`` override what an alias implies."""
    _, implied = resolve_name(name)
    return retriever_class(name)(**{**implied, **params})


def load_retriever(directory: str | os.PathLike, mmap: bool = False) -> Any:
    """Load any saved index: meta.json says which retriever built it.

    ``mmap=True`` memory-maps the bm25 score matrix (bm25s' ``mmap`` load): a very large index opens at once
    and its pages are read from disk as queries touch them, instead of all into RAM first.
    """
    meta = read_index_meta(directory)
    try:
        cls = retriever_class(meta["retriever"])
    except ConfigError as err:
        raise IndexLoadError(f"{directory}: built by retriever {meta['retriever']!r}, which is unknown here ({err})") from None
    return cls.load(directory, mmap=mmap)
