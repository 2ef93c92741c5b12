"""Shared setup of the inference benchmarks: the KorQuAD half split by article, the reader, the report file.

The reader is the one `benchmarks/reader_learning.py` trains on the EVEN articles of the KorQuAD
1.0 dev half (offline all-MiniLM-L6-v2, an ENGLISH uncased model: Hangul is read as jamo and
~26% of syllables are [UNK], so its EM/F1 exercise the system, they are not what a Korean reader
reaches). Questions come from the ODD articles and are answered against all the half's passages.
"""
from __future__ import annotations

import glob
import json
import os
import platform
import random
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
KORQUAD = REPO.parent / "shared" / "data" / "korquad" / "KorQuAD_v1.0_dev_half.json"
RESULTS = REPO / "benchmarks" / "results" / "inference.md"
MINILM_NOTE = ("The reader is the offline all-MiniLM-L6-v2, an ENGLISH uncased model (Hangul read as jamo, ~26% of "
               "syllables [UNK]): its EM/F1 show the system works end to end, not what a Korean reader reaches.")


def find_reader(path: str | None) -> Path:
    """``path``, or the newest reader saved by reader_learning.py under /tmp/odqa_reader_bench_*/reader."""
    if path:
        return Path(path)
    found = sorted(glob.glob("/tmp/odqa_reader_bench_*/reader/run_info.json"), key=os.path.getmtime)
    if not found:
        raise SystemExit("no reader: pass --reader DIR, or run `flock /tmp/odqa-cpu.lock python "
                         "benchmarks/reader_learning.py --budget_minutes 30` first.")
    return Path(found[-1]).parent


def reader_description(reader: Path) -> str:
    info_path = reader / "run_info.json"
    if not info_path.exists():
        return str(reader)
    info = json.loads(info_path.read_text(encoding="utf-8"))
    ev = info.get("results", {}).get("eval", {})
    minutes = info.get("reader", {}).get("max_train_minutes")
    return (f"{info.get('reader', {}).get('model', '?')} fine-tuned on {info.get('train_examples', '?')} questions of the "
            f"even articles ({minutes} min budget; its own eval: EM {ev.get('eval_exact_match', float('nan')):.2f} / "
            f"F1 {ev.get('eval_f1', float('nan')):.2f} on {info.get('data', {}).get('max_eval_samples') or 'all'} "
            f"odd-article questions, gold passage)")


def odd_article_questions(out_path: Path, n: int | None, seed: int = 0) -> Path:
    """A SQuAD file with ``n`` random questions (all if None) of the odd articles, in dataset order."""
    payload = json.loads(KORQUAD.read_text(encoding="utf-8"))
    odd = payload["data"][1::2]
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


def half_corpus():
    """All paragraphs of the KorQuAD half (575, minus exact duplicates) as the retrieval corpus."""
    from odqa.retrieval.corpus import Corpus

    return Corpus.from_mrc_dataset(json.loads(KORQUAD.read_text(encoding="utf-8")), source=str(KORQUAD))


def machine() -> str:
    import torch

    return (f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), torch {torch.__version__} "
            f"with {torch.get_num_threads()} threads, Python {platform.python_version()}")


def update_section(name: str, text: str, path: Path = RESULTS) -> None:
    """Replace this benchmark's section of the shared results file (other sections are kept)."""
    from odqa.utils.io import write_text

    begin, end = f"<!-- {name}: begin -->", f"<!-- {name}: end -->"
    old = path.read_text(encoding="utf-8") if path.exists() else "# Inference benchmarks\n"
    block = f"{begin}\n{text.strip()}\n{end}"
    if begin in old and end in old:
        new = old[:old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    write_text(path, new)


def fmt(x: Any, digits: int = 2) -> str:
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)
