"""Questions to retrieve for: SQuAD/KorQuAD JSON, JSONL/CSV with id,question, or a `datasets` folder."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from odqa.data.loading import mrc_rows_from_json, read_mrc_rows
from odqa.errors import DataError
from odqa.utils.io import read_csv_rows, read_json, read_jsonl


def load_question_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every row of a question file, parsed once: MRC rows (with context and answers) when the file has them.

    A ``save_to_disk`` DatasetDict gives its validation split (what `odqa evaluate` scores), or its only split.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        rows = read_mrc_rows(path, split="validation")
    elif suffix == ".json":
        data = read_json(path)  # parsed once: MRC rows are standardised from it, not read again
        is_mrc = isinstance(data, dict) or (isinstance(data, list) and data and isinstance(data[0], dict)
                                            and "context" in data[0])
        rows = mrc_rows_from_json(data, str(path)) if is_mrc else data
    elif suffix == ".jsonl":
        rows = list(read_jsonl(path))
    elif suffix in {".csv", ".tsv"}:
        rows = list(read_csv_rows(path, required="question"))
    else:
        raise DataError(f"{path}: unknown questions format {suffix!r}; use SQuAD .json, .jsonl or .csv with id,question.")
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a SQuAD/KorQuAD object or a list of rows with id and question.")
    return rows


def questions_of(rows: list[dict[str, Any]], source: str, max_samples: int | None = None) -> list[dict[str, str]]:
    """[{id, question}] of parsed rows; a missing id becomes the row number; ``max_samples`` keeps the first N."""
    questions = []
    for n, row in enumerate(rows):
        if not isinstance(row, dict) or not str(row.get("question") or "").strip():
            raise DataError(f"{source}: row {n} (id {row.get('id', '?') if isinstance(row, dict) else '?'!r}) has no "
                            f"'question'; every row needs id and question.")
        questions.append({"id": str(row.get("id", n)), "question": str(row["question"])})
    if max_samples is not None:
        if max_samples < 1:
            raise DataError(f"--max_samples must be at least 1 (got {max_samples}).")
        questions = questions[:max_samples]
    return questions


def load_questions(path: str | os.PathLike, max_samples: int | None = None) -> list[dict[str, str]]:
    """[{id, question}] from any supported layout (see :func:`load_question_rows`)."""
    return questions_of(load_question_rows(path), str(path), max_samples)
