"""`odqa split-articles`: the project's evaluation split of a SQuAD/KorQuAD file, by article.

Questions about one article share its passages, so a random split by question leaks passages from
training into evaluation. odqa measures on the KorQuAD half split by article: even-numbered articles
train, odd-numbered ones evaluate (BENCHMARKS.md). Benchmarks, example scripts and users make that
split with this one function.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from odqa.errors import DataError
from odqa.utils.args import parse_cli
from odqa.utils.io import read_json, write_text

SPLIT_NAMES = ("train_even.json", "eval_odd.json")


def split_by_article(path: str | Path, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``train_even.json`` (articles 0, 2, 4, ...) and ``eval_odd.json`` (1, 3, ...) into ``out_dir``."""
    payload = read_json(path)
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list) or len(payload["data"]) < 2:
        raise DataError(f"{path}: expected SQuAD/KorQuAD JSON with at least two articles under 'data'.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for parity, name in enumerate(SPLIT_NAMES):
        part = {"version": payload.get("version"), "data": payload["data"][parity::2]}
        paths.append(write_text(out_dir / name, json.dumps(part, ensure_ascii=False)))
    return paths[0], paths[1]


@dataclass
class SplitArguments:
    dataset: str = field(metadata={"help": "SQuAD/KorQuAD JSON (data -> paragraphs -> qas)."})
    output_dir: str = field(metadata={"help": f"Folder for {' and '.join(SPLIT_NAMES)}."})


def main(argv: list[str] | None = None) -> int:
    (args,) = parse_cli([SplitArguments], argv, prog="odqa split-articles",
                        description="Split a SQuAD/KorQuAD file by article: even articles train, odd ones evaluate.")
    train, evaluation = split_by_article(args.dataset, args.output_dir)
    print(json.dumps({"train": str(train), "eval": str(evaluation)}), file=sys.stdout)
    return 0
