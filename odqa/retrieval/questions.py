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

        from odqa.data.loading import resolve_dataset_folder

        loaded = datasets.load_from_disk(str(resolve_dataset_folder(path)))
        splits = list(loaded.values()) if isinstance(loaded, datasets.DatasetDict) else [loaded]
        rows = [ex for split in splits for ex in iter_mrc_examples(split, str(path))]
    else:
        rows = list(iter_mrc_examples(read_json(path), str(path)))
    rows = [r for r in rows if r["question"]]
    if not rows:
        raise DataError(f"{path}: no questions found (expected SQuAD/KorQuAD 'data' -> paragraphs -> qas).")
    return rows


def load_questions(path: str | os.PathLike, max_samples: int | None = None) -> list[dict[str, str]]:
    """[{id, question}] from any supported layout; a missing id becomes the row number.

    A ``save_to_disk`` DatasetDict gives the questions of its validation split (what `odqa evaluate` scores),
    or of its only split; ``max_samples`` keeps the first N (to try a few questions first).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        rows: Any = _split_to_predict(path)
    elif suffix == ".json" and isinstance(read_json(path), dict):
        rows = load_mrc_examples(path)
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
    if max_samples is not None:
        if max_samples < 1:
            raise DataError(f"--max_samples must be at least 1 (got {max_samples}).")
        questions = questions[:max_samples]
    return questions


def _split_to_predict(path: Path) -> list[dict[str, Any]]:
    import datasets

    from odqa.data.loading import resolve_dataset_folder

    loaded = datasets.load_from_disk(str(resolve_dataset_folder(path)))
    if isinstance(loaded, datasets.DatasetDict):
        if "validation" in loaded:
            loaded = loaded["validation"]
        elif len(loaded) == 1:
            loaded = next(iter(loaded.values()))
        else:
            raise DataError(f"{path}: a DatasetDict with splits {sorted(loaded)} and no 'validation': give the "
                            "folder of one split, or a file.")
    return [r for r in iter_mrc_examples(loaded, str(path)) if r["question"]]
