"""`odqa choose-threshold`: choose the no-answer threshold on a labelled dev set and store it with the reader.

The dev set must hold questions the collection cannot answer (SQuAD 2.0 / KLUE-MRC rows marked
``is_impossible``, or flat rows with an empty answers list) beside answerable ones, read by the same
reader, retriever and top-k you will serve with:

  odqa infer --model models/my_reader --index models/my_index --dataset_path dev.json \\
      --no_answer_threshold off --output_dir outputs/dev
  odqa choose-threshold --dataset dev.json --nbest outputs/dev/nbest_predictions.json --reader models/my_reader

The threshold is the one with the best overall EM (abstaining is right on an unanswerable question, wrong
on an answerable one), searched as the official SQuAD 2.0 script's ``best_exact_thresh``; it is written to
``<reader>/no_answer_threshold.json`` with how it was chosen, and from then on `odqa infer`, `odqa serve`
and ``ODQAPipeline`` abstain above it (``--no_answer_threshold off`` to always answer again). Choose it on
questions the reader was not trained on: on its own training articles it is over-confident.

Where most dev questions have no answer, the best-EM threshold abstains a lot, answerable questions
included; ``--max_has_answer_drop 5`` takes the best overall EM among thresholds that keep HasAns EM
within 5 points of always answering (benchmarks/abstention.py measures both rules).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Optional

from odqa.reader.abstention import choose_threshold  # noqa: F401  (the command's core; reader-level so train-mrc shares it)
from odqa.utils.args import parse_cli


@dataclass
class ChooseThresholdArguments:
    dataset: str = field(metadata={"help": "Labelled dev data with unanswerable questions (SQuAD 2.0 / KLUE-MRC "
                                           "is_impossible, or flat rows with empty answers)."})
    nbest: str = field(metadata={"help": "nbest_predictions.json of `odqa infer` (or `train-mrc --do_eval`) on "
                                         "that dev set."})
    reader: Optional[str] = field(default=None, metadata={
        "help": "Reader folder to store the threshold in (no_answer_threshold.json); without it, only printed."})
    metric: str = field(default="korquad_v2", metadata={
        "help": "Rules of EM: korquad_v2 (KorQuAD normalization) or squad_v2.", "choices": ["korquad_v2", "squad_v2"]})
    split: str = field(default="validation", metadata={"help": "Split to use when --dataset is a DatasetDict."})
    max_has_answer_drop: Optional[float] = field(default=None, metadata={
        "help": "EM points: choose the best overall EM among thresholds that keep HasAns EM (the answerable "
                "questions) within this many points of always answering. Default: no limit (the SQuAD 2.0 "
                "best-EM threshold). Where most dev questions have no answer, the best-EM threshold abstains "
                "a lot; set e.g. 5 when a missed answer costs you more than a wrong one."})


def main(argv: list[str] | None = None) -> int:
    (args,) = parse_cli([ChooseThresholdArguments], argv, prog="odqa choose-threshold", description=__doc__)
    from odqa.data.loading import read_mrc_rows
    from odqa.metrics.cli import read_nbest
    from odqa.reader.abstention import write_threshold

    rows = read_mrc_rows(args.dataset, split=args.split)
    nbest = read_nbest(args.nbest)
    record = choose_threshold(rows, nbest, args.metric, args.nbest, args.max_has_answer_drop)
    if not record["no_answer"]:
        print(f"odqa choose-threshold: note: {args.dataset} has no unanswerable question, so the threshold only "
              "learns when answering pays; choose it on data with questions the collection cannot answer.")
    record.update({"dataset": args.dataset, "nbest": args.nbest,
                   "chosen": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())})
    if args.reader:
        path = write_threshold(args.reader, record["no_answer_threshold"], record)
        record["written"] = str(path)
    print(json.dumps(record, ensure_ascii=False, indent=2))
    return 0
