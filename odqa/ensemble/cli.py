"""`odqa ensemble`: combine several runs' answers into one predictions.json, scored next to each run.

Examples:
  # majority vote of three inference runs; ties go to the answer with more probability mass
  odqa ensemble --runs outputs/run1 outputs/run2 outputs/run3 --output_dir outputs/ensemble

  # summed probabilities over every run's n-best list, the first run counted twice, scored on gold answers
  odqa ensemble --runs outputs/run1 outputs/run2 --method probability --weights 2 1 \\
      --dataset data/sample/validation.json --output_dir outputs/ensemble

A run is an output folder of `odqa infer` or `odqa train-mrc` (its nbest_predictions.json, else its
predictions.json) or one of those files. Writes predictions.json and nbest_predictions.json (each text
with its votes, summed probability and the number of runs that proposed it) and, with --dataset,
metrics.json with EM/F1 of every run and of the ensemble.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from odqa.ensemble.voting import ENSEMBLE_METHODS, NBEST_FILE, PREDICTIONS_FILE, TIE_BREAKS
from odqa.errors import ConfigError
from odqa.utils.args import parse_cli
from odqa.utils.io import write_json


@dataclass
class EnsembleArguments:
    runs: list[str] = field(metadata={"help": "Two or more run folders (or nbest_predictions.json / "
                                              "predictions.json files)."})
    output_dir: str = field(default="outputs/ensemble", metadata={"help": "Where the ensemble's files go."})
    method: str = field(default="vote", metadata={
        "help": "vote: each run's top answer is one vote; probability: every n-best answer adds its probability.",
        "choices": list(ENSEMBLE_METHODS)})
    tie_break: str = field(default="probability", metadata={
        "help": "Equal votes: the answer with more summed probability, the shorter one or the longer one.",
        "choices": list(TIE_BREAKS)})
    weights: Optional[list[float]] = field(default=None, metadata={"help": "One weight per run (default: all 1)."})
    dataset: Optional[str] = field(default=None, metadata={
        "help": "Gold answers (any MRC format `odqa evaluate` reads): score every run and the ensemble."})
    metric: str = field(default="korquad", metadata={"help": "korquad (char F1) | squad (token F1).",
                                                     "choices": ["korquad", "squad"]})


def run_ensemble(args: EnsembleArguments) -> dict:
    from odqa.ensemble.voting import ensemble_predictions, load_run

    if len(args.runs) < 2:
        raise ConfigError("--runs needs at least two runs to ensemble.")
    runs = [load_run(path) for path in args.runs]
    try:
        predictions, nbest = ensemble_predictions(runs, args.method, args.tie_break, args.weights)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    out = Path(args.output_dir)
    written = [write_json(out / PREDICTIONS_FILE, predictions), write_json(out / NBEST_FILE, nbest)]
    report: dict = {"runs": args.runs, "method": args.method, "tie_break": args.tie_break,
                    "weights": args.weights, "questions": len(predictions)}
    if args.dataset:
        from odqa.metrics import compute_metrics
        from odqa.metrics.cli import load_references

        references = load_references(args.dataset)
        asked = {qid: references[qid] for qid in predictions if qid in references}
        if not asked:
            raise ConfigError(f"{args.dataset}: none of the runs' question ids are in this dataset.")
        scores = [{"run": path, **compute_metrics({q: run[q][0]["text"] if run.get(q) else "" for q in asked},
                                                  asked, metric=args.metric)} for path, run in zip(args.runs, runs)]
        scores.append({"run": "ensemble", **compute_metrics(predictions, asked, metric=args.metric)})
        report["scores"] = scores
        written.append(write_json(out / "metrics.json", report))
    for row in report.get("scores", []):
        print(f"{row['run']}: EM {row['exact_match']:.2f}  F1 {row['f1']:.2f}  ({row['total']} questions)")
    print("wrote " + ", ".join(str(p) for p in written))
    return report


def main(argv: list[str] | None = None) -> int:
    (args,) = parse_cli([EnsembleArguments], list(sys.argv[1:] if argv is None else argv), prog="odqa ensemble",
                        description=__doc__)
    run_ensemble(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
