"""`odqa evaluate`: score a predictions.json against a dataset's gold answers.

  odqa evaluate --dataset data/sample/validation.json --predictions outputs/sample/predictions.json
  # SQuAD 2.0 accounting (unanswerable questions count; "" is an abstention), KorQuAD's character F1,
  # and the best no-answer threshold from the n-best file odqa infer wrote beside the predictions:
  odqa evaluate --dataset dev.json --predictions outputs/dev/predictions.json --metric korquad_v2 \\
      --nbest outputs/dev/nbest_predictions.json
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

from odqa.errors import ConfigError, DataError
from odqa.utils.args import parse_cli
from odqa.utils.io import read_json

V1_METRICS = ("korquad", "squad")
V2_METRICS = ("korquad_v2", "squad_v2")
EVAL_METRICS = V1_METRICS + V2_METRICS


@dataclass
class EvaluateArguments:
    dataset: str = field(metadata={"help": "Gold data: SQuAD/KorQuAD .json, flat .json/.jsonl/.csv, or a "
                                           "save_to_disk folder (its validation split)."})
    predictions: str = field(metadata={"help": "predictions.json: {question id: answer text} (\"\" = no answer)."})
    metric: str = field(default="korquad", metadata={
        "help": "korquad (character F1, KorQuAD 1.0 rules) or squad (token F1, SQuAD 1.1 rules): answerable "
                "questions only. korquad_v2 / squad_v2: SQuAD 2.0 accounting (questions marked is_impossible "
                "count, an empty prediction is right on them), HasAns/NoAns figures, with KorQuAD's or SQuAD's "
                "normalization and F1.", "choices": list(EVAL_METRICS)})
    nbest: Optional[str] = field(default=None, metadata={
        "help": "With a _v2 metric: nbest_predictions.json of odqa infer / train-mrc; its best answers' "
                "no_answer_score give best_exact / best_f1 and their thresholds."})
    no_answer_scores: Optional[str] = field(default=None, metadata={
        "help": "With a _v2 metric: {question id: no-answer score} JSON instead of --nbest (the official "
                "script's na_prob file works)."})
    no_answer_threshold: Optional[float] = field(default=None, metadata={
        "help": "With --nbest/--no_answer_scores: score as if every question scoring above it were abstained "
                "(the official --na-prob-thresh)."})
    split: str = field(default="validation", metadata={"help": "Split to score when --dataset is a DatasetDict."})


def load_references(path: str, split: str = "validation") -> dict[str, list[str]]:
    """Question id → gold answer texts, in dataset order (as the official scripts iterate)."""
    from odqa.data.loading import read_mrc_rows

    return references_of(read_mrc_rows(path, split=split))


def references_of(rows: list[dict]) -> dict[str, list[str]]:
    """Question id → gold answer texts of parsed MRC rows (rows without answers give [])."""
    return {row["id"]: list(row["answers"]["text"]) for row in rows}


def labelled_references_of(rows: list[dict]) -> dict[str, list[str]]:
    """SQuAD 2.0 references: question id → gold texts, [] for a question marked unanswerable; unlabelled rows
    (no answer, not marked) are left out."""
    return {row["id"]: list(row["answers"]["text"]) for row in rows
            if row["answers"]["text"] or row.get("is_impossible")}


def load_predictions(path: str) -> dict[str, str]:
    predictions = read_json(path)
    if not isinstance(predictions, dict) or not all(isinstance(v, str) for v in predictions.values()):
        raise DataError(f"{path}: expected a JSON object {{question id: answer text}} (predictions.json), "
                        "not nbest_predictions.json or a list.")
    return predictions


def read_nbest(path: str) -> dict[str, list[dict]]:
    """An nbest_predictions.json ({question id: [answers]}), or a one-line DataError naming the file."""
    payload = read_json(path)
    if not isinstance(payload, dict) or not all(isinstance(v, list) for v in payload.values()):
        raise DataError(f"{path}: expected nbest_predictions.json ({{question id: [answers]}}).")
    return payload


def load_no_answer_scores(nbest: str | None, scores: str | None) -> dict[str, float] | None:
    """No-answer scores from an n-best file or a {id: score} file (at most one of them)."""
    from odqa.reader.abstention import no_answer_scores_from_nbest

    if nbest and scores:
        raise ConfigError("give --nbest or --no_answer_scores, not both.")
    if nbest:
        return no_answer_scores_from_nbest(read_nbest(nbest), nbest)
    if scores:
        payload = read_json(scores)
        if not isinstance(payload, dict) or not all(isinstance(v, (int, float)) for v in payload.values()):
            raise DataError(f"{scores}: expected {{question id: number}}.")
        return {k: float(v) for k, v in payload.items()}
    return None


def score_v2(rows: list[dict], predictions: dict[str, str], metric: str,
             no_answer_scores: dict[str, float] | None = None, threshold: float | None = None) -> dict:
    """SQuAD 2.0 figures of ``predictions`` over the labelled rows (questions not predicted count as abstained)."""
    from odqa.metrics.squad_v2 import compute_squad_v2

    references = labelled_references_of(rows)
    if not references:
        raise ConfigError("no labelled questions (with answers, or marked is_impossible) to score.")
    if no_answer_scores is not None:
        no_answer_scores = {q: no_answer_scores.get(q, float("inf")) for q in references}
    return compute_squad_v2(predictions, references, no_answer_scores, threshold, metric)


def main(argv: list[str] | None = None) -> int:
    (args,) = parse_cli([EvaluateArguments], argv, prog="odqa evaluate", description=__doc__)
    from odqa.data.loading import read_mrc_rows
    from odqa.metrics import compute_metrics

    rows = read_mrc_rows(args.dataset, split=args.split)
    predictions = load_predictions(args.predictions)
    unknown = [qid for qid in predictions if qid not in {r["id"] for r in rows}]
    if args.metric in V2_METRICS:
        no_answer_scores = load_no_answer_scores(args.nbest, args.no_answer_scores)
        if args.no_answer_threshold is not None and no_answer_scores is None:
            raise ConfigError("--no_answer_threshold needs --nbest or --no_answer_scores.")
        scores = score_v2(rows, predictions, args.metric, no_answer_scores, args.no_answer_threshold)
    else:
        if args.nbest or args.no_answer_scores or args.no_answer_threshold is not None:
            raise ConfigError("--nbest, --no_answer_scores and --no_answer_threshold need --metric korquad_v2 or "
                              "squad_v2.")
        scores = compute_metrics(predictions, references_of(rows), metric=args.metric)
    scores["predictions_not_in_dataset"] = len(unknown)
    print(json.dumps(scores, ensure_ascii=False, indent=2))
    return 0
