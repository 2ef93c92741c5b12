"""Shared setup of the inference benchmarks: the KorQuAD half split by article, the reader, the report file.

The reader is the one `benchmarks/reader_learning.py` trains on the EVEN articles of the KorQuAD
1.0 dev half (by default multilingual-e5-small, `e5-small`). Questions come from the ODD articles
and are answered against all the half's passages; settings are chosen on the EVEN articles.
"""
from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reader_learning import DEFAULT_READER_DIR  # noqa: E402
from report import KORQUAD, MINILM_NOTE, machine  # noqa: E402,F401  (re-exported)

CHUNK = 50  # questions read and cached together by read_cached


def find_reader(path: str | None) -> Path:
    """``path``, or the reader benchmarks/reader_learning.py saved."""
    reader = Path(path) if path else DEFAULT_READER_DIR
    if not (reader / "config.json").exists():
        raise SystemExit(f"no reader in {reader}: pass --reader DIR, or run `flock /tmp/odqa-cpu.lock python "
                         "benchmarks/reader_learning.py --budget_minutes 30` first.")
    return reader


def reader_description(reader: Path) -> str:
    info_path = reader / "run_info.json"
    if not info_path.exists():
        return str(reader)
    info = json.loads(info_path.read_text(encoding="utf-8"))
    if info.get("averaged_from"):  # odqa average-readers: its sources say what it is
        sources = ", ".join(f"`{Path(s['model']).name}`" for s in info["averaged_from"])
        return f"{reader.name}, the weight average (odqa average-readers) of {sources}"
    ev = info.get("results", {}).get("eval", {})
    minutes = info.get("reader", {}).get("max_train_minutes") or info.get("budget_minutes")
    return (f"{info.get('reader', {}).get('model', '?')} fine-tuned on {info.get('train_examples', '?')} training examples of the "
            f"even articles ({minutes} min budget; its own eval: EM {ev.get('eval_exact_match', float('nan')):.2f} / "
            f"F1 {ev.get('eval_f1', float('nan')):.2f} on {info.get('data', {}).get('max_eval_samples') or 'all'} "
            f"odd-article questions, gold passage)")


def odd_article_questions(out_path: Path, n: int | None, seed: int = 0, parity: int = 1) -> Path:
    """A SQuAD file with ``n`` random questions (all if None) of the odd articles (``parity`` 0: the even ones,
    which the reader trained on), in dataset order."""
    payload = json.loads(KORQUAD.read_text(encoding="utf-8"))
    odd = payload["data"][parity::2]
    ids = [qa["id"] for a in odd for p in a["paragraphs"] for qa in p["qas"]]
    keep = set(ids if n is None or n >= len(ids) else random.Random(seed).sample(ids, n))
    articles = []
    for article in odd:
        paragraphs = [{**p, "qas": [qa for qa in p["qas"] if qa["id"] in keep]} for p in article["paragraphs"]]
        paragraphs = [p for p in paragraphs if p["qas"]]
        if paragraphs:
            articles.append({"title": article["title"], "paragraphs": paragraphs})
    out_path.write_text(json.dumps({"version": "odd-subset", "data": articles}, ensure_ascii=False), encoding="utf-8")
    return out_path


def even_article_windows_source(n: int, seed: int = 0) -> tuple[list[str], list[list]]:
    """(questions, [[gold passage]]) of ``n`` random questions of the EVEN (training) articles: int8 calibration
    data that the evaluated questions never see."""
    from odqa.pipeline import PassageToRead

    payload = json.loads(KORQUAD.read_text(encoding="utf-8"))
    rows = [(qa["question"], p["context"]) for a in payload["data"][0::2] for p in a["paragraphs"] for qa in p["qas"]]
    rows = random.Random(seed).sample(rows, min(n, len(rows)))
    return [q for q, _ in rows], [[PassageToRead(f"even-{i}", c)] for i, (_, c) in enumerate(rows)]


def half_corpus():
    """All paragraphs of the KorQuAD half (575, minus exact duplicates) as the retrieval corpus."""
    from odqa.retrieval.corpus import Corpus

    return Corpus.from_mrc_dataset(json.loads(KORQUAD.read_text(encoding="utf-8")), source=str(KORQUAD))


def fmt(x: Any, digits: int = 2) -> str:
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def latency_setup(dataset: str | Path, n: int, work: Path):
    """(even-article file, the first ``n`` odd-article questions in dataset order, bm25 over the whole half): what
    the latency benchmarks ask, and against what."""
    from odqa.data.loading import read_mrc_rows
    from odqa.data.split import split_by_article
    from odqa.retrieval import get_retriever, load_corpus

    even, odd = split_by_article(Path(dataset), work)
    questions = [row["question"] for row in read_mrc_rows(odd)][:n]
    return even, questions, get_retriever("bm25").index(load_corpus(str(dataset)))


def load_reader(reader_dir: str | Path, precision: str, even_file: Path):
    """The reader at ``precision`` (none or a --quantize value); int8 calibrated on the even (training) articles."""
    from odqa.pipeline import ExtractiveReader
    from odqa.pipeline.cli import calibrate_from_file

    reader = ExtractiveReader.from_pretrained(str(reader_dir), quantize=None if precision == "none" else precision,
                                              show_progress=False)
    if precision == "int8":
        calibrate_from_file(reader, str(even_file), "int8")
    return reader


def read_cached(name: str, questions: list[dict], work: Path, read_chunk, chunk_size: int = CHUNK) -> dict:
    """{question id: what ``read_chunk`` found} for every question, read chunk by chunk, each chunk cached in
    ``work`` (a rerun reads only the missing chunks: a slow machine can spread a run over sessions)."""
    from odqa.utils.io import read_json, write_json

    out: dict[str, dict] = {}
    chunks = [questions[i:i + chunk_size] for i in range(0, len(questions), chunk_size)]
    for n, chunk in enumerate(chunks):
        path = work / f"{name}_{n:03d}.json"
        if path.is_file():
            cached = read_json(path)
            if sorted(cached) == sorted(q["id"] for q in chunk):
                out.update(cached)
                continue
        start = time.perf_counter()
        found = read_chunk(chunk)
        write_json(path, found)
        out.update(found)
        print(f"{name}: chunk {n + 1}/{len(chunks)} read in {time.perf_counter() - start:.0f} s", flush=True)
    return out
