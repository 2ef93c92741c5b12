"""The retrieval table the reader consumes, and its CSV form (which the ``csv`` retriever replays)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from odqa.retrieval.base import Retriever
from odqa.retrieval.corpus import Corpus
from odqa.utils.io import atomic_path

TABLE_COLUMNS = ["id", "question", "passage_ids", "scores", "contexts"]
LIST_COLUMNS = ("passage_ids", "scores", "contexts")


def retrieve_table(retriever: Retriever, questions: list[dict[str, Any]], top_k: int,
                   corpus: Corpus | None = None, batch_size: int = 1024, show_progress: bool = False):
    """One row per question: id, question, passage_ids, scores, contexts (lists, best first)."""
    import pandas as pd
    from tqdm.auto import tqdm

    rows = []
    starts = range(0, len(questions), batch_size)
    for start in tqdm(starts, desc="retrieve", disable=not show_progress or len(starts) < 2):
        batch = questions[start:start + batch_size]
        batch_hits = retriever.retrieve([q["question"] for q in batch], top_k)
        texts = corpus if corpus is not None else retriever.corpus  # read after retrieving: it may have grown
        for q, hits in zip(batch, batch_hits):
            rows.append({"id": q["id"], "question": q["question"], "passage_ids": [h.passage_id for h in hits],
                         "scores": [h.score for h in hits], "contexts": [texts[h.passage_id].text for h in hits]})
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def write_table_csv(table, path: str | os.PathLike) -> Path:
    """CSV with the list columns as JSON arrays (readable back by ``CsvRetriever``)."""
    out = table.copy()
    for column in LIST_COLUMNS:
        if column in out:
            out[column] = [json.dumps(v, ensure_ascii=False) for v in out[column]]
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False)
    return Path(path)
