"""The retriever interface and the index-directory format every retriever shares.

An index is a directory: ``meta.json`` (format, version, retriever name, tokenizer, params),
``corpus.jsonl`` (the passages it was built on) and the retriever's own arrays. Keeping the
corpus inside makes an index self-contained: ``load_retriever(dir)`` needs nothing else.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from odqa.errors import IndexLoadError
from odqa.retrieval.corpus import Corpus, Passage
from odqa.utils.io import atomic_directory, read_json, write_json

INDEX_FORMAT = "odqa-index"
INDEX_VERSION = 1
META_FILE = "meta.json"
CORPUS_FILE = "corpus.jsonl"


@dataclass(frozen=True)
class Hit:
    """One retrieved passage: ``rank`` starts at 1; higher ``score`` is better. ``passage`` (id, title, text,
    document offsets) is attached by :func:`odqa.retrieval.table.retrieve_hits`, so the reader needs no lookup."""

    passage_id: str
    score: float
    rank: int
    passage: Passage | None = field(default=None, compare=False, repr=False)


@runtime_checkable
class Retriever(Protocol):
    """What the pipeline, the evaluation and the CLI rely on; dense/ES retrievers implement it too."""

    name: ClassVar[str]
    corpus: Corpus

    def index(self, corpus: Corpus) -> "Retriever": ...

    def retrieve(self, queries: list[str], top_k: int) -> list[list[Hit]]: ...

    def save(self, directory: str | os.PathLike) -> Path: ...

    @classmethod
    def load(cls, directory: str | os.PathLike, mmap: bool = False) -> "Retriever": ...


def hits_from_arrays(corpus: Corpus, indices: Any, scores: Any) -> list[Hit]:
    """Turn one query's (passage row, score) arrays, best first, into Hits."""
    return [Hit(corpus.passages[int(i)].id, float(s), rank) for rank, (i, s) in enumerate(zip(indices, scores), 1)]


class IndexedRetriever:
    """Shared save/load: atomic index directory with meta.json and corpus.jsonl.

    Subclasses implement ``index``, ``retrieve``, ``params()`` (json-able constructor
    arguments), ``_save_arrays(dir)`` and ``_load_arrays(dir)``.
    """

    name: ClassVar[str] = ""
    # constructor arguments that indexes saved before the argument existed were built with (not in their meta)
    legacy_params: ClassVar[dict[str, Any]] = {}
    corpus: Corpus

    def params(self) -> dict[str, Any]:
        raise NotImplementedError

    def _save_arrays(self, directory: Path) -> None:
        raise NotImplementedError

    def _load_arrays(self, directory: Path) -> None:
        raise NotImplementedError

    def _require_index(self) -> None:
        if getattr(self, "corpus", None) is None:
            raise IndexLoadError(f"this {self.name} retriever has no index yet: call .index(corpus) or load a saved index.")

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the index to a temp dir next to ``directory``, then rename it into place."""
        self._require_index()
        directory = Path(directory)
        with atomic_directory(directory) as tmp:
            self.save_into(tmp)
        return directory

    def save_into(self, directory: Path) -> None:
        """Write into an existing empty directory (used by ``save`` and by composite retrievers)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.corpus.save_jsonl(directory / CORPUS_FILE)
        self._save_arrays(directory)
        write_json(directory / META_FILE, {"format": INDEX_FORMAT, "version": INDEX_VERSION,
                                           "retriever": self.name, **self.params(),
                                           "num_passages": len(self.corpus)})

    @classmethod
    def load(cls, directory: str | os.PathLike, mmap: bool = False) -> "IndexedRetriever":
        """``mmap``: memory-map the arrays that support it (bm25) instead of reading them into RAM."""
        directory = Path(directory)
        meta = read_index_meta(directory)
        if meta["retriever"] != cls.name:
            raise IndexLoadError(f"{directory / META_FILE}: this is a {meta['retriever']!r} index, not {cls.name!r}; "
                                 f"load it with odqa.retrieval.load_retriever().")
        params = {**cls.legacy_params,
                  **{k: v for k, v in meta.items() if k not in {"format", "version", "retriever", "num_passages"}}}
        try:
            retriever = cls(**params)
        except TypeError as err:
            raise IndexLoadError(f"{directory / META_FILE}: unexpected parameters ({err}); rebuild the index.") from None
        retriever.corpus = Corpus.load_jsonl(directory / CORPUS_FILE)
        if len(retriever.corpus) != meta.get("num_passages", len(retriever.corpus)):
            raise IndexLoadError(f"{directory / CORPUS_FILE}: has {len(retriever.corpus)} passages but meta.json says "
                                 f"{meta['num_passages']}; the index is corrupt, rebuild it with `odqa index`.")
        retriever.mmap = mmap
        try:
            retriever._load_arrays(directory)
        except (OSError, ValueError, KeyError) as err:
            raise IndexLoadError(f"{directory}: index arrays are missing or corrupt ({err}); "
                                 f"rebuild it with `odqa index`.") from None
        return retriever


def read_index_meta(directory: str | os.PathLike) -> dict[str, Any]:
    """Read and check meta.json: right format, a version this code can read."""
    directory = Path(directory)
    path = directory / META_FILE
    if not directory.is_dir():
        raise IndexLoadError(f"{directory}: index directory not found; build one with `odqa index --output {directory}`.")
    if not path.exists():
        raise IndexLoadError(f"{path}: missing, so {directory} is not an odqa index; build one with `odqa index`.")
    try:
        meta = read_json(path)
    except Exception as err:  # DataError from read_json -> the index is what is broken
        raise IndexLoadError(f"{path}: unreadable ({err}); rebuild the index.") from None
    if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT or "retriever" not in meta:
        raise IndexLoadError(f"{path}: not an odqa index (expected \"format\": \"{INDEX_FORMAT}\" and a \"retriever\").")
    if meta.get("version") != INDEX_VERSION:
        raise IndexLoadError(f"{path}: index format version {meta.get('version')!r}, this odqa reads version "
                             f"{INDEX_VERSION}; rebuild the index with this version of `odqa index`.")
    return meta
