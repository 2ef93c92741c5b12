"""Passages with stable ids, loaded from the layouts people actually have.

Supported inputs (``load_corpus`` picks by content, not by name):

* the competition ``wikipedia_documents.json``: ``{"0": {"text", "title", "document_id", ...}}``
* JSONL / JSON list / CSV / TSV rows with ``id``, ``title``, ``text`` (``document_id`` optional)
* a ``datasets`` folder saved with ``save_to_disk`` (rows as above, or an MRC dataset)
* an MRC dataset (SQuAD / KorQuAD JSON, or a ``datasets`` folder with ``context``): its
  contexts, identical ones once, with ids derived from the text so they are stable across files.

Identical texts are merged (first id kept, the others reported in ``Corpus.merged``); an
empty text is an error that names the row.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from odqa.errors import DataError
from odqa.utils.io import atomic_path, read_csv_rows, read_json, read_jsonl

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Passage:
    """``start`` is the character offset of ``text`` inside its source document's text."""

    id: str
    text: str
    title: str = ""
    document_id: str = ""
    start: int = 0


@dataclass
class Corpus:
    passages: list[Passage]
    source: str = ""
    merged: dict[str, str] = field(default_factory=dict)  # dropped duplicate id -> kept id

    def __post_init__(self) -> None:
        self._row_of = {p.id: i for i, p in enumerate(self.passages)}

    def __len__(self) -> int:
        return len(self.passages)

    def __iter__(self) -> Iterator[Passage]:
        return iter(self.passages)

    def __getitem__(self, passage_id: str) -> Passage:
        """Passage by id (merged duplicate ids resolve to the kept passage)."""
        passage_id = self.merged.get(passage_id, passage_id)
        try:
            return self.passages[self._row_of[passage_id]]
        except KeyError:
            raise DataError(f"{self.source or 'corpus'}: no passage with id {passage_id!r}.") from None

    def __contains__(self, passage_id: str) -> bool:
        return self.merged.get(passage_id, passage_id) in self._row_of

    def row(self, passage_id: str) -> int:
        return self._row_of[self.merged.get(passage_id, passage_id)]

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.passages]

    @property
    def texts(self) -> list[str]:
        return [p.text for p in self.passages]

    @property
    def titles(self) -> list[str]:
        return [p.title for p in self.passages]

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]], source: str = "") -> "Corpus":
        """Validate rows (id, text, title, document_id, start): reject empty texts, merge duplicates."""
        passages: list[Passage] = []
        seen_ids: dict[str, str] = {}
        first_id_of_text: dict[str, str] = {}
        merged: dict[str, str] = {}
        where = source or "corpus"
        for row_number, record in enumerate(records):
            pid = str(record.get("id", row_number)).strip()
            text = record.get("text")
            if not pid:
                raise DataError(f"{where}: row {row_number} has an empty id; give every passage a unique id.")
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{where}: passage id {pid!r} (row {row_number}) has an empty or missing 'text'; "
                                f"fill it in or remove the row.")
            if pid in seen_ids:
                if seen_ids[pid] == text:
                    continue
                raise DataError(f"{where}: passage id {pid!r} appears twice with different texts (row {row_number}); "
                                f"make the ids unique.")
            seen_ids[pid] = text
            if text in first_id_of_text:
                merged[pid] = first_id_of_text[text]
                continue
            first_id_of_text[text] = pid
            title = record.get("title") or ""
            passages.append(Passage(id=pid, text=text, title=str(title),
                                    document_id=str(record.get("document_id") or pid),
                                    start=int(record.get("start") or 0)))
        if not passages:
            raise DataError(f"{where}: no passages found.")
        if merged:
            example = next(iter(merged.items()))
            logger.warning("%s: %d passages repeat the text of an earlier one and were merged (e.g. %r -> %r).",
                           where, len(merged), *example)
        return cls(passages, source=source, merged=merged)

    @classmethod
    def from_mrc_dataset(cls, data: dict[str, Any] | Iterable[dict[str, Any]], source: str = "") -> "Corpus":
        """The contexts of a SQuAD/KorQuAD dataset (nested JSON) or of flat rows with ``context``."""
        return cls.from_records(context_records(iter_mrc_examples(data, source)), source=source)

    def save_jsonl(self, path: str | os.PathLike) -> Path:
        with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
            for p in self.passages:
                f.write(json.dumps(asdict(p), ensure_ascii=False) + "\n")
        return Path(path)

    @classmethod
    def load_jsonl(cls, path: str | os.PathLike) -> "Corpus":
        return cls.from_records(read_jsonl(Path(path)), source=str(path))


def context_id(text: str) -> str:
    """Stable id of an MRC context: the same paragraph gets the same id in every file."""
    return "ctx-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def iter_mrc_examples(data: Any, source: str = "") -> Iterator[dict[str, Any]]:
    """Flatten SQuAD nested JSON (or pass flat rows through) to {id, question, context, title, answers}."""
    where = source or "dataset"
    if isinstance(data, dict) and "data" in data:
        if not isinstance(data["data"], list):
            raise DataError(f"{where}: 'data' must be a list of articles (SQuAD format).")
        for a, article in enumerate(data["data"]):
            title = article.get("title", "")
            paragraphs = article.get("paragraphs")
            if not isinstance(paragraphs, list):
                raise DataError(f"{where}: article {a} ({title!r}) has no 'paragraphs' list (SQuAD format).")
            for p, paragraph in enumerate(paragraphs):
                context = paragraph.get("context")
                if not isinstance(context, str):
                    raise DataError(f"{where}: article {a} ({title!r}) paragraph {p} has no 'context' string.")
                qas = paragraph.get("qas") or []
                if not qas:
                    yield {"id": None, "question": None, "context": context, "title": title, "answers": []}
                for qa in qas:
                    answers = qa.get("answers") or []
                    yield {"id": str(qa.get("id", "")), "question": qa.get("question"), "context": context,
                           "title": title, "answers": [x.get("text", "") for x in answers if isinstance(x, dict)]}
        return
    if isinstance(data, dict):
        raise DataError(f"{where}: expected SQuAD/KorQuAD JSON with a top-level 'data' list.")
    for n, row in enumerate(data):
        if "context" not in row:
            raise DataError(f"{where}: row {n} has no 'context' field; an MRC dataset needs id, question, context.")
        answers = row.get("answers") or []
        if isinstance(answers, dict):  # datasets layout {"text": [...], "answer_start": [...]}
            answers = list(answers.get("text") or [])
        yield {"id": str(row.get("id", n)), "question": row.get("question"), "context": row["context"],
               "title": row.get("title", ""), "answers": [a if isinstance(a, str) else a.get("text", "") for a in answers]}


def context_records(examples: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for ex in examples:
        yield {"id": context_id(ex["context"]), "text": ex["context"], "title": ex.get("title") or "",
               "document_id": ex.get("title") or ""}


def load_corpus(path: str | os.PathLike) -> Corpus:
    """Load a corpus from any supported layout (see module docstring)."""
    path = Path(path)
    source = str(path)
    if path.is_dir():
        return Corpus.from_records(_dataset_folder_records(path), source=source)
    if not path.exists():
        raise DataError(f"{path}: corpus file not found.")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return Corpus.from_records(_rows_with_text(read_jsonl(path), source), source=source)
    if suffix in {".csv", ".tsv"}:
        return Corpus.from_records(_rows_with_text(_read_csv(path), source), source=source)
    if suffix == ".json":
        data = read_json(path)
        if isinstance(data, dict) and "data" in data:
            return Corpus.from_mrc_dataset(data, source=source)
        if isinstance(data, dict):
            return Corpus.from_records(_wikipedia_records(data, source), source=source)
        if isinstance(data, list):
            return Corpus.from_records(_rows_with_text(data, source), source=source)
        raise DataError(f"{path}: expected an object or a list of passages.")
    raise DataError(f"{path}: unknown corpus format {suffix!r}; use .json (wikipedia_documents or SQuAD), "
                    f".jsonl, .csv/.tsv with id,title,text, or a `datasets` folder.")


def _wikipedia_records(data: dict[str, Any], source: str) -> Iterator[dict[str, Any]]:
    for key, doc in data.items():
        if not isinstance(doc, dict) or "text" not in doc:
            raise DataError(f"{source}: entry {key!r} has no 'text'; expected the wikipedia_documents.json layout "
                            f'{{"0": {{"text": ..., "title": ..., "document_id": ...}}}}.')
        yield {"id": str(key), "text": doc["text"], "title": doc.get("title") or "",
               "document_id": str(doc.get("document_id", key))}


def _rows_with_text(rows: Iterable[dict[str, Any]], source: str) -> Iterator[dict[str, Any]]:
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(f"{source}: row {n} is not an object with id, title, text.")
        if "text" not in row:
            hint = " (it has 'context': is this an MRC dataset? pass the SQuAD JSON instead)" if "context" in row else ""
            raise DataError(f"{source}: row {n} (id {row.get('id', '?')!r}) has no 'text' field{hint}; "
                            f"expected columns id, title, text.")
        yield row


def _read_csv(path: Path) -> Iterator[dict[str, Any]]:
    return read_csv_rows(path, required="text")


def _dataset_folder_records(path: Path) -> Iterator[dict[str, Any]]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as err:
        raise DataError(f"{path}: not a `datasets` folder saved with save_to_disk ({err}).") from None
    splits = list(loaded.values()) if isinstance(loaded, datasets.DatasetDict) else [loaded]
    columns = set(splits[0].column_names)
    if "text" in columns:
        for split in splits:
            yield from _rows_with_text(split, str(path))
    elif "context" in columns:
        for split in splits:
            yield from context_records(iter_mrc_examples(split, str(path)))
    else:
        raise DataError(f"{path}: dataset columns {sorted(columns)} have neither 'text' (a corpus) "
                        f"nor 'context' (an MRC dataset).")
