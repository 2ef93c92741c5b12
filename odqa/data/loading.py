"""Read MRC data from every layout users have, into one row schema.

Supported sources:

* SQuAD/KorQuAD nested JSON (``{"data": [{"title", "paragraphs": [{"context", "qas"}]}]}``);
* flat JSON (a list, or ``{"data": [...]}`` of rows), JSONL and CSV with
  ``id, title, context, question, answers{text[], answer_start[]}``;
* a ``datasets.save_to_disk`` folder: a ``DatasetDict`` (train/validation/test — the KLUE-MRC
  competition layout, where the test split has no answers) or a single ``Dataset``.

Every row becomes ``{"id", "title", "context", "question", "answers": {"text": [...],
"answer_start": [...]}, "is_impossible", "question_type"}`` and is validated (see
:mod:`odqa.data.validation`).

Questions without an answer in their passage (SQuAD 2.0, KLUE-MRC) are rows with ``is_impossible``
true and empty ``answers``; training reads them as "no answer" windows, ``--metric squad_v2`` scores
them. A row says so with ``is_impossible: true`` (SQuAD 2.0's ``plausible_answers`` are ignored), or,
in flat files, with an ``answers`` value that is given and empty (``{"text": [], "answer_start": []}``
or ``[]``). A row with no ``answers`` at all is *unlabelled* (test data), not unanswerable.
KLUE-MRC's ``guid`` is read as the id and its ``question_type`` (1 paraphrase, 2 multi-sentence
reasoning, 3 unanswerable) kept as a column (0 when a source has none).
"""
from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import Any, Iterable

from odqa.data.validation import validate_examples
from odqa.errors import DataError
from odqa.utils.io import read_csv_rows, read_json, read_jsonl

REQUIRED_COLUMNS = ("id", "context", "question")


def mrc_features():
    """The one row schema every loader produces."""
    from datasets import Features, Sequence, Value

    return Features({
        "id": Value("string"),
        "title": Value("string"),
        "context": Value("string"),
        "question": Value("string"),
        "answers": {"text": Sequence(Value("string")), "answer_start": Sequence(Value("int64"))},
        "is_impossible": Value("bool"),
        "question_type": Value("int64"),
    })


def _rows_from_nested(data: list[dict], source: str) -> list[dict]:
    rows = []
    for a_idx, article in enumerate(data):
        title = article.get("title", "") or ""
        paragraphs = article.get("paragraphs")
        if paragraphs is None:
            raise DataError(f"{source}: article #{a_idx} ({title!r}) has no 'paragraphs'; "
                            "SQuAD/KorQuAD files need data[].paragraphs[].qas[].")
        for p_idx, paragraph in enumerate(paragraphs):
            context = paragraph.get("context")
            if context is None:
                raise DataError(f"{source}: article #{a_idx} paragraph #{p_idx} has no 'context'.")
            for qa in paragraph.get("qas", []):
                answers = qa.get("answers") or []
                rows.append({
                    "id": qa.get("id"),
                    "title": title,
                    "context": context,
                    "question": qa.get("question"),
                    "answers": {
                        "text": [a.get("text") for a in answers],
                        "answer_start": [a.get("answer_start") for a in answers],
                    },
                    # SQuAD 1.1 / KorQuAD 1.0 have no flag: every question there has an answer
                    "is_impossible": bool(qa.get("is_impossible", False)),
                    "question_type": qa.get("question_type"),
                })
    return rows


def _is_missing(value: Any) -> bool:
    """None, NaN (an empty CSV/pandas cell) or the empty string."""
    return value is None or (isinstance(value, float) and value != value) or value == ""


def _normalize_answers(value: Any, row_id: Any, source: str) -> dict:
    """Accept ``{"text": [...], "answer_start": [...]}``, a list of ``{"text", "answer_start"}``
    dicts, a stringified form of either (CSV), or nothing (unlabelled test data)."""
    if _is_missing(value):
        return {"text": [], "answer_start": []}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                raise DataError(f"{source}: row {row_id!r}: 'answers' is not valid JSON "
                                "(expected {\"text\": [...], \"answer_start\": [...]}).") from None
    if isinstance(value, list):
        value = {"text": [a.get("text") for a in value], "answer_start": [a.get("answer_start") for a in value]}
    if not isinstance(value, dict) or "text" not in value or "answer_start" not in value:
        raise DataError(f"{source}: row {row_id!r}: 'answers' must have 'text' and 'answer_start' lists.")
    texts, starts = value["text"], value["answer_start"]
    if isinstance(texts, str):
        texts = [texts]
    if isinstance(starts, (int, float)):
        starts = [starts]
    texts, starts = list(texts), list(starts)
    if len(texts) != len(starts):
        raise DataError(f"{source}: row {row_id!r}: answers has {len(texts)} texts but {len(starts)} "
                        "answer_start values; they must pair up.")
    try:
        starts = [int(s) for s in starts]
    except (TypeError, ValueError):
        raise DataError(f"{source}: row {row_id!r}: answer_start must be integers, got {starts!r}.") from None
    return {"text": [str(t) for t in texts], "answer_start": starts}


def _parse_flag(value: Any, row_id: Any, source: str) -> bool | None:
    """``is_impossible`` as a bool (JSON bool, 0/1, or "true"/"false" from CSV); None when not given."""
    if _is_missing(value):
        return None
    if isinstance(value, (bool, int)) and not isinstance(value, float):
        return bool(value)
    text = str(value).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no"}:
        return False
    raise DataError(f"{source}: row {row_id!r}: 'is_impossible' must be true or false, got {value!r}.")


def _parse_question_type(value: Any, row_id: Any, source: str) -> int:
    if _is_missing(value):
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DataError(f"{source}: row {row_id!r}: 'question_type' must be an integer (KLUE-MRC: 1, 2 or 3), "
                        f"got {value!r}.") from None


def _standardize(rows: Iterable[dict], source: str) -> list[dict]:
    rows = list(rows)
    if not rows:
        raise DataError(f"{source}: no examples found.")
    if "id" not in rows[0] and "guid" in rows[0]:  # KLUE-MRC names its ids guid
        rows = [{**row, "id": row.get("guid")} for row in rows]
    missing = [c for c in REQUIRED_COLUMNS if c not in rows[0]]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; found {sorted(rows[0])}. "
                        "MRC rows need id, context, question (and answers for training/evaluation).")
    out = []
    for i, row in enumerate(rows):
        row_id = row.get("id")
        if row_id is None or str(row_id) == "":
            raise DataError(f"{source}: row #{i} has no 'id'; every question needs a unique id.")
        answers = _normalize_answers(row.get("answers"), row_id, source)
        impossible = _parse_flag(row.get("is_impossible"), row_id, source)
        if impossible is None:  # flat rows: answers given, and empty, mean "no answer"; absent means unlabelled
            impossible = not _is_missing(row.get("answers")) and not answers["text"]
        out.append({
            "id": str(row_id),
            "title": "" if row.get("title") is None else str(row.get("title")),
            "context": row.get("context"),
            "question": row.get("question"),
            "answers": answers,
            "is_impossible": impossible,
            "question_type": _parse_question_type(row.get("question_type"), row_id, source),
        })
    return out


def json_rows(obj: Any, source: str) -> list[dict]:
    """The rows of an already parsed JSON file: SQuAD/KorQuAD nested articles flattened, flat rows as they are."""
    data = obj.get("data", obj) if isinstance(obj, dict) else obj
    if not isinstance(data, list):
        raise DataError(f"{source}: expected a SQuAD/KorQuAD object with a 'data' list, or a list of rows.")
    if data and isinstance(data[0], dict) and "paragraphs" in data[0]:
        return _rows_from_nested(data, source)
    return data


def mrc_rows_from_json(obj: Any, source: str) -> list[dict]:
    """:func:`read_mrc_rows` for JSON the caller has already parsed (so a file is read once)."""
    return _standardize(json_rows(obj, source), source)


def _read_rows(path: Path) -> list[dict]:
    source = str(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return json_rows(read_json(path), source)
    if suffix == ".jsonl":
        return list(read_jsonl(path))
    if suffix in {".csv", ".tsv"}:
        return list(read_csv_rows(path, required="question"))
    raise DataError(f"{source}: unsupported file type {suffix!r}; use SQuAD/KorQuAD .json, flat .json/.jsonl/.csv, "
                    "or a datasets.save_to_disk folder.")


def load_mrc_examples(path: str | os.PathLike, *, fix_answer_start: bool = False,
                      require_answers: bool = False) -> "datasets.Dataset":  # noqa: F821
    """Load one file of MRC examples into a validated ``datasets.Dataset``."""
    from datasets import Dataset

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found.")
    rows = _standardize(_read_rows(path), str(path))
    rows = validate_examples(rows, str(path), fix_answer_start=fix_answer_start,
                             require_answers=require_answers).rows
    return Dataset.from_list(rows, features=mrc_features())


def _load_saved(path: Path):
    """A ``save_to_disk`` folder (Dataset or DatasetDict), or a DataError naming it."""
    from datasets import load_from_disk

    try:
        return load_from_disk(str(path))
    except FileNotFoundError as err:
        raise DataError(f"{path}: not a datasets.save_to_disk folder ({err}).") from None


def _from_disk(path: Path, fix_answer_start: bool, require_answers: bool):
    from datasets import Dataset, DatasetDict

    loaded = _load_saved(path)

    def convert(ds: "Dataset", name: str) -> "Dataset":
        source = f"{path}[{name}]" if name else str(path)
        rows = _standardize(ds.to_list(), source)
        needs = require_answers and name in {"train", "validation", ""}
        rows = validate_examples(rows, source, fix_answer_start=fix_answer_start, require_answers=needs).rows
        return Dataset.from_list(rows, features=mrc_features())

    if isinstance(loaded, DatasetDict):
        return DatasetDict({name: convert(ds, name) for name, ds in loaded.items()})
    return convert(loaded, "")


def select_split(loaded, path: str | os.PathLike, split: str = "validation"):
    """One split of a ``DatasetDict``: ``split``, or the only one there is (what prediction and scoring use)."""
    if split in loaded:
        return loaded[split]
    if len(loaded) == 1:
        return next(iter(loaded.values()))
    raise DataError(f"{path}: no {split!r} split; found {sorted(loaded)}. Pass --split, or give the folder of one "
                    "split, or a file.")


def read_mrc_rows(path: str | os.PathLike, *, split: str | None = None) -> list[dict]:
    """The rows of any MRC source in the one schema, as written (not validated, not NFC-normalised).

    Retrieval evaluation, inference and DPR training use these: their ids and contexts must match the
    corpus built from the same file character for character. A ``save_to_disk`` folder gives all its
    splits (``split=None``) or one (:func:`select_split`). Training goes through :func:`load_mrc_dataset`,
    which validates these same rows.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file or folder not found.")
    if not path.is_dir():
        return _standardize(_read_rows(path), str(path))
    from datasets import DatasetDict

    folder = resolve_dataset_folder(path)
    loaded = _load_saved(folder)
    if not isinstance(loaded, DatasetDict):
        return _standardize(loaded.to_list(), str(folder))
    if split is not None:
        return _standardize(select_split(loaded, folder, split).to_list(), f"{folder}[{split}]")
    return [row for name, ds in loaded.items() for row in _standardize(ds.to_list(), f"{folder}[{name}]")]


def answer_texts(row: dict) -> list[str]:
    """The gold answer texts of a row (empty strings dropped); ``answers`` in the one schema
    (``{"text": [...], ...}``) or already a list of texts."""
    answers = row.get("answers") or []
    texts = answers.get("text") or [] if isinstance(answers, dict) else answers
    return [t if isinstance(t, str) else t.get("text", "") for t in texts if t]


def resolve_dataset_folder(path: Path) -> Path:
    """The KLUE-MRC data folder (``data/`` holding ``train_dataset/`` and ``test_dataset/``, what the
    competition code's ``--dataset_path`` pointed at) means its ``train_dataset/``."""
    is_saved = (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()
    if not is_saved and (path / "train_dataset").is_dir():
        return path / "train_dataset"
    return path


def load_mrc_dataset(path: str | os.PathLike, *, fix_answer_start: bool = False,
                     require_answers: bool = False):
    """Load a file (→ ``Dataset``) or a ``save_to_disk`` folder (→ ``Dataset``/``DatasetDict``).

    ``require_answers`` makes a question without gold answers an error (training and
    evaluation need them; prediction does not).
    """
    path = Path(path)
    if path.is_dir():
        return _from_disk(resolve_dataset_folder(path), fix_answer_start, require_answers)
    return load_mrc_examples(path, fix_answer_start=fix_answer_start, require_answers=require_answers)
