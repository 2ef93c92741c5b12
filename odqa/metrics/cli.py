"""`odqa evaluate`: score a predictions.json against a dataset's gold answers."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from odqa.errors import DataError
from odqa.utils.args import parse_cli
from odqa.utils.io import read_json


@dataclass
class EvaluateArguments:
    dataset: str = field(metadata={"help": "Gold data: SQuAD/KorQuAD .json, flat .json/.jsonl/.csv, or a "
                                           "save_to_disk folder (its validation split)."})
    predictions: str = field(metadata={"help": "predictions.json: {question id: answer text}."})
    metric: str = field(default="korquad", metadata={"help": "korquad (character F1, KorQuAD 1.0 rules) or "
                                                              "squad (token F1, SQuAD 1.1 rules).",
                                                      "choices": ["korquad", "squad"]})
    split: str = field(default="validation", metadata={"help": "Split to score when --dataset is a DatasetDict."})


def load_references(path: str, split: str = "validation") -> dict[str, list[str]]:
    """Question id → gold answer texts, in dataset order (as the official scripts iterate)."""
    from odqa.data.loading import read_mrc_rows

    return references_of(read_mrc_rows(path, split=split))


def references_of(rows: list[dict]) -> dict[str, list[str]]:
    """Question id → gold answer texts of parsed MRC rows (rows without answers give [])."""
    return {row["id"]: list(row["answers"]["text"]) for row in rows}


def load_predictions(path: str) -> dict[str, str]:
    predictions = read_json(path)
    if not isinstance(predictions, dict) or not all(isinstance(v, str) for v in predictions.values()):
        raise DataError(f"{path}: expected a JSON object {{question id: answer text}} (predictions.json), "
                        "not nbest_predictions.json or a list.")
    return predictions


def main(argv: list[str] | None = None) -> int:
    (args,) = parse_cli([EvaluateArguments], argv, prog="odqa evaluate", description=__doc__)
    from odqa.metrics import compute_metrics

    references = load_references(args.dataset, args.split)
    predictions = load_predictions(args.predictions)
    unknown = [qid for qid in predictions if qid not in references]
    scores = compute_metrics(predictions, references, metric=args.metric)
    scores["predictions_not_in_dataset"] = len(unknown)
    print(json.dumps(scores, ensure_ascii=False, indent=2))
    return 0
