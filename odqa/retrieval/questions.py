"""Questions to retrieve for: SQuAD/KorQuAD JSON, JSONL/CSV with id,question, or a `datasets` folder."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from odqa.errors import DataError
from odqa.retrieval.corpus import _read_csv_rows, _read_jsonl, iter_mrc_examples
from odqa.utils.io import read_json


def load_mrc_examples(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Questions of an MRC dataset with their context and answers (for retrieval evaluation)."""
    path = Path(path)
    if path.is_dir():
        import datasets

        loaded = datasets.load_from_disk(str(path))
        splits = list(loaded.values()) if isinstance(loaded, datasets.DatasetDict) else [loaded]
        rows = [ex for split in splits for ex in iter_mrc_examples(split, str(path))]
    else:
        rows = list(iter_mrc_examples(read_json(path), str(path)))
    rows = [r for r in rows if r["question"]]
    if not rows:
        raise DataError(f"{path}: no questions found (expected SQuAD/KorQuAD 'data' -> paragraphs -> qas).")
    return rows


def load_questions(path: str | os.PathLike) -> list[dict[str, str]]:
    """[{id, question}] from any supported layout; a missing id becomes the row number."""
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".json" and isinstance(read_json(path), dict):
        rows: Any = load_mrc_examples(path)
    elif suffix == ".json":
        rows = read_json(path)
    elif suffix == ".jsonl":
        rows = list(_read_jsonl(path))
    elif suffix in {".csv", ".tsv"}:
        rows = list(_read_csv_rows(path, required="question"))
    else:
        raise DataError(f"{path}: unknown questions format {suffix!r}; use SQuAD .json, .jsonl or .csv with id,question.")
    questions = []
    for n, row in enumerate(rows):
        if not isinstance(row, dict) or not str(row.get("question") or "").strip():
            raise DataError(f"{path}: row {n} (id {row.get('id', '?') if isinstance(row, dict) else '?'!r}) has no "
                            f"'question'; every row needs id and question.")
        questions.append({"id": str(row.get("id", n)), "question": str(row["question"])})
    return questions
