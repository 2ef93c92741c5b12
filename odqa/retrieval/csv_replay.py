"""Replay retrieval results computed elsewhere (e.g. on an Elasticsearch server) from a CSV.

Accepted columns: ``question`` (required) and either ``passage_ids`` (JSON list, as written by
``odqa retrieve``) or ``contexts`` (JSON list of passage texts) or ``context`` (one text, the
competition's ``get_retrieved_df`` layout); optional ``id`` and ``scores`` (JSON list). Passage
texts found in the CSV form the corpus unless ``index(corpus)`` gives one that holds every id.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

from odqa.errors import DataError
from odqa.retrieval.base import Hit, IndexedRetriever
from odqa.retrieval.corpus import Corpus, context_id
from odqa.utils.io import read_csv_rows, read_jsonl
from odqa.utils.io import atomic_path

RESULTS_FILE = "results.jsonl"


def _json_list(value: str, path: Path, row: int, column: str) -> list:
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, list):
        raise DataError(f"{path}: row {row}, column {column!r} must be a JSON list like [\"p1\", \"p2\"] "
                        f"(got {value[:60]!r}).")
    return parsed


def read_results_csv(path: str | os.PathLike) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(result rows {id, question, passage_ids, scores}, passage records found in the CSV)."""
    path = Path(path)
    results, passages = [], []
    for n, row in enumerate(read_csv_rows(path, required="question")):
        if not (row.get("question") or "").strip():
            raise DataError(f"{path}: row {n} has an empty 'question'.")
        if row.get("passage_ids") not in (None, ""):
            ids = [str(x) for x in _json_list(row["passage_ids"], path, n, "passage_ids")]
            texts = _json_list(row["contexts"], path, n, "contexts") if row.get("contexts") else None
        elif row.get("contexts") not in (None, ""):
            texts = _json_list(row["contexts"], path, n, "contexts")
            ids = [context_id(t) for t in texts]
        elif row.get("context") not in (None, ""):
            texts, ids = [row["context"]], [context_id(row["context"])]
        else:
            raise DataError(f"{path}: row {n} has none of 'passage_ids', 'contexts', 'context'; the CSV needs "
                            f"question plus passage_ids (JSON list) or contexts (JSON list) or context.")
        if texts is not None:
            if len(texts) != len(ids):
                raise DataError(f"{path}: row {n} has {len(ids)} passage_ids but {len(texts)} contexts.")
            passages.extend({"id": i, "text": t} for i, t in zip(ids, texts))
        scores = _json_list(row["scores"], path, n, "scores") if row.get("scores") else \
            [float(len(ids) - r) for r in range(len(ids))]
        if len(scores) != len(ids):
            raise DataError(f"{path}: row {n} has {len(ids)} passage_ids but {len(scores)} scores.")
        results.append({"id": row.get("id") or str(n), "question": row["question"], "passage_ids": ids,
                        "scores": [float(s) for s in scores]})
    return results, passages


class CsvRetriever(IndexedRetriever):
    name: ClassVar[str] = "csv"

    def __init__(self, source: str | None = None) -> None:
        """Empty; use :meth:`from_csv` (``source`` only records where the results came from)."""
        self.path = source
        self.corpus: Corpus | None = None
        self._results: list[dict[str, Any]] = []
        self._by_question: dict[str, dict[str, Any]] = {}
        self._csv_passages: list[dict[str, Any]] = []

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> "CsvRetriever":
        retriever = cls(source=str(path))
        retriever._results, retriever._csv_passages = read_results_csv(path)
        retriever._build_lookup()
        return retriever

    def params(self) -> dict[str, Any]:
        return {"source": self.path}

    def _build_lookup(self) -> None:
        self._by_question = {}
        for row in self._results:
            self._by_question.setdefault(row["question"].strip(), row)

    def index(self, corpus: Corpus | None = None) -> "CsvRetriever":
        """Use ``corpus`` for the passage texts, or the texts the CSV carries when it is None."""
        if corpus is None:
            if not self._csv_passages:
                raise DataError(f"{self.path}: the CSV has passage ids but no texts; pass the corpus they come from "
                                f"(--corpus).")
            corpus = Corpus.from_records(self._csv_passages, source=str(self.path))
        missing = [pid for row in self._results for pid in row["passage_ids"] if pid not in corpus]
        if missing:
            raise DataError(f"{self.path}: {len(missing)} retrieved passage ids are not in corpus {corpus.source!r} "
                            f"(e.g. {missing[0]!r}); give the corpus the results were computed on.")
        self.corpus = corpus
        return self

    def retrieve(self, queries: list[str], top_k: int) -> list[list[Hit]]:
        self._require_index()
        out = []
        for q in queries:
            row = self._by_question.get(q.strip())
            if row is None:
                raise DataError(f"{self.path or 'csv index'}: no replayed results for question {q[:80]!r}; "
                                f"the CSV must cover every question you retrieve for.")
            out.append([Hit(self.corpus.merged.get(pid, pid), s, r)
                        for r, (pid, s) in enumerate(zip(row["passage_ids"][:top_k], row["scores"][:top_k]), 1)])
        return out

    def _save_arrays(self, directory: Path) -> None:
        with atomic_path(directory / RESULTS_FILE) as tmp, tmp.open("w", encoding="utf-8") as f:
            for row in self._results:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")

    def _load_arrays(self, directory: Path) -> None:
        self._results = list(read_jsonl(directory / RESULTS_FILE))
        self._build_lookup()
