"""The retrieval table the reader consumes, and its CSV form (which the ``csv`` retriever replays)."""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from odqa.retrieval.base import Hit, Retriever
from odqa.retrieval.corpus import Corpus
from odqa.utils.io import atomic_path

TABLE_COLUMNS = ["id", "question", "passage_ids", "scores", "contexts"]
LIST_COLUMNS = ("passage_ids", "scores", "contexts")


def retrieve_hits(retriever: Retriever, questions: list[dict[str, Any]], top_k: int, corpus: Corpus | None = None,
                  batch_size: int = 1024, show_progress: bool = False) -> list[list[Hit]]:
    """Per question its top-k hits (best first), each carrying its passage; questions go in batches."""
    from tqdm.auto import tqdm

    out: list[list[Hit]] = []
    starts = range(0, len(questions), batch_size)
    for start in tqdm(starts, desc="retrieve", disable=not show_progress or len(starts) < 2):
        batch = questions[start:start + batch_size]
        batch_hits = retriever.retrieve([q["question"] for q in batch], top_k)
        passages = corpus if corpus is not None else retriever.corpus  # read after retrieving: it may have grown
        out.extend([replace(h, passage=h.passage or passages[h.passage_id]) for h in hits] for hits in batch_hits)
    return out


def hits_table(questions: list[dict[str, Any]], hits: list[list[Hit]]):
    """One row per question: id, question, passage_ids, scores, contexts (lists, best first) — the form
    written to disk (retrieved.csv, which the ``csv`` retriever replays)."""
    import pandas as pd

    rows = [{"id": q["id"], "question": q["question"], "passage_ids": [h.passage_id for h in found],
             "scores": [h.score for h in found], "contexts": [h.passage.text for h in found]}
            for q, found in zip(questions, hits)]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def retrieve_table(retriever: Retriever, questions: list[dict[str, Any]], top_k: int,
                   corpus: Corpus | None = None, batch_size: int = 1024, show_progress: bool = False):
    """:func:`retrieve_hits` as a table (:func:`hits_table`)."""
    return hits_table(questions, retrieve_hits(retriever, questions, top_k, corpus, batch_size, show_progress))


def write_table_csv(table, path: str | os.PathLike) -> Path:
    """CSV with the list columns as JSON arrays (readable back by ``CsvRetriever``)."""
    out = table.copy()
    for column in LIST_COLUMNS:
        if column in out:
            out[column] = [json.dumps(v, ensure_ascii=False) for v in out[column]]
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False)
    return Path(path)


def write_run(table, path: str | os.PathLike, run_tag: str = "odqa") -> Path:
    """The table as a standard run file, by suffix: ``.trec``/``.run``/``.txt`` (TREC: ``qid Q0 docid rank
    score tag``, what trec_eval, ranx and Pyserini read), ``.jsonl`` (one ``{"id", "question", "hits":
    [{"passage_id", "score", "rank"}]}`` per question), else the replayable CSV (:func:`write_table_csv`)."""
    suffix = Path(path).suffix.lower()
    if suffix in {".trec", ".run", ".txt"}:
        lines = [f"{qid} Q0 {pid} {rank} {score:.6f} {run_tag}"
                 for qid, pids, scores in zip(table["id"], table["passage_ids"], table["scores"])
                 for rank, (pid, score) in enumerate(zip(pids, scores), 1)]
        text = "\n".join(lines) + ("\n" if lines else "")
    elif suffix == ".jsonl":
        text = "".join(json.dumps({"id": qid, "question": question,
                                   "hits": [{"passage_id": p, "score": s, "rank": r}
                                            for r, (p, s) in enumerate(zip(pids, scores), 1)]},
                                  ensure_ascii=False) + "\n"
                       for qid, question, pids, scores in zip(table["id"], table["question"], table["passage_ids"],
                                                              table["scores"]))
    else:
        return write_table_csv(table, path)
    for qid in table["id"]:
        if any(c.isspace() for c in str(qid)):
            from odqa.errors import DataError

            raise DataError(f"question id {qid!r} contains whitespace, which a TREC run cannot hold; "
                            "write a .jsonl or .csv run instead.")
    from odqa.utils.io import write_text

    return write_text(path, text)

