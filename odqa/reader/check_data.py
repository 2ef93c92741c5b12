"""`odqa check-data`: can this tokenizer and these window settings reach the gold answers?

It runs the real preprocessing, feeds the gold token positions back through the real
post-processing as if a perfect model had produced them, scores the result, and counts the
answers lost by cause. A round-trip EM below 100 is the ceiling of any model trained with
these settings — the answer to "why is my answer never found?". Questions marked unanswerable
(``is_impossible``) are counted apart and left out of the round trip (they have no span to reach).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from odqa.reader.processor import WindowArguments
from odqa.utils.args import parse_cli

CAUSES = {
    "boundary_inside_token": "the answer starts or ends inside a token (e.g. a whole Korean word became "
                             "one token or [UNK], so the particle comes along: gold 탄약, token 탄약이)",
    "longer_than_max_answer_length": "the gold span has more tokens than --max_answer_length",
    "truncation": "no window holds the whole answer (raise --max_seq_length or lower --doc_stride)",
    "other": "lost for another reason (e.g. an equal-scoring span elsewhere)",
}


def round_trip(processor, examples, max_listed: int = 5) -> tuple[dict[str, Any], dict[str, str]]:
    """Gold labels → fake logits → post-processing → EM/F1, with losses counted by cause."""
    from odqa.metrics import compute_metrics

    features = processor.get_eval_features(examples)
    max_len = max(len(ids) for ids in features["input_ids"])
    n = len(features)
    start_logits = np.zeros((n, max_len), dtype=np.float32)
    end_logits = np.zeros((n, max_len), dtype=np.float32)
    starts, ends = features["start_positions"], features["end_positions"]
    start_logits[np.arange(n), starts] = 10.0
    end_logits[np.arange(n), ends] = 10.0
    cfg = processor.config
    predictions, _ = processor.post_processing_function(examples, features, (start_logits, end_logits))
    references = {ex["id"]: ex["answers"]["text"] for ex in examples}
    metrics = compute_metrics(predictions, references)

    offsets_all = features["offset_mapping"]
    windows: dict[str, list[int]] = {}
    for i, eid in enumerate(features["example_id"]):
        windows.setdefault(eid, []).append(i)
    per_example_em = {}
    from odqa.metrics.korquad import exact_match_score

    lost: dict[str, list[dict]] = {cause: [] for cause in CAUSES}
    for ex in examples:
        gold = ex["answers"]["text"]
        if not gold:
            continue
        em = max(exact_match_score(predictions[ex["id"]], g) for g in gold)
        per_example_em[ex["id"]] = em
        if em:
            continue
        start_char = ex["answers"]["answer_start"][0]
        end_char = start_char + len(gold[0])
        labelled = [i for i in windows.get(ex["id"], []) if not _is_cls(features[i], starts[i], ends[i])]
        if not labelled:
            cause, detail = "truncation", {}
        elif all(ends[i] - starts[i] + 1 > cfg.max_answer_length for i in labelled):
            cause, detail = "longer_than_max_answer_length", {"tokens": ends[labelled[0]] - starts[labelled[0]] + 1}
        else:
            i = labelled[0]
            span = (offsets_all[i][starts[i]][0], offsets_all[i][ends[i]][1])
            cause = "boundary_inside_token" if span != (start_char, end_char) else "other"
            detail = {"token_span_text": ex["context"][span[0]:span[1]]}
        lost[cause].append({"id": ex["id"], "gold": gold[0], "predicted": predictions[ex["id"]], **detail})

    unanswerable = sum(examples["is_impossible"]) if "is_impossible" in examples.column_names else 0
    report = {
        "examples": len(examples),
        # marked is_impossible (SQuAD 2.0 / KLUE-MRC): trained as "no answer" windows, not round-tripped
        "unanswerable_examples": unanswerable,
        "answerable_examples": len(examples) - unanswerable,
        "features": n,
        "round_trip_exact_match": metrics["exact_match"],
        "round_trip_f1": metrics["f1"],
        "answers_lost": sum(len(v) for v in lost.values()),
        "lost_by_cause": {
            cause: {"count": len(items), "what": CAUSES[cause], "examples": items[:max_listed]}
            for cause, items in lost.items() if items
        },
        "settings": {k: getattr(cfg, k) for k in ("max_seq_length", "doc_stride", "max_query_length",
                                                  "max_answer_length", "morpheme_boundaries")},
    }
    return report, predictions


def _is_cls(feature: dict, start: int, end: int) -> bool:
    offsets = feature["offset_mapping"]
    return offsets[start] is None or offsets[end] is None


@dataclass
class CheckDataArguments(WindowArguments):
    dataset: str = field(metadata={"help": "MRC data with answers: SQuAD/KorQuAD .json, flat .json/.jsonl/.csv, "
                                           "or a save_to_disk folder (its validation split is used)."})
    model: str = field(metadata={"help": "Tokenizer to check: a model or tokenizer-only folder, a hub name, "
                                         "or an offline alias: `e5-small` (multilingual-e5-small), `minilm` (English all-MiniLM-L6-v2)."})
    output_dir: str | None = field(default=None, metadata={"help": "Write predictions.json and report.json here."})
    split: str = field(default="validation", metadata={"help": "Split to check when --dataset is a DatasetDict."})
    fix_answer_start: bool = field(default=False, metadata={
        "help": "Move answer_start values that do not point at the answer text to its nearest occurrence."})
    max_listed: int = field(default=5, metadata={"help": "Examples listed per cause of loss."})


def main(argv: list[str] | None = None) -> int:
    (args,) = parse_cli([CheckDataArguments], argv, prog="odqa check-data", description=__doc__)
    from odqa.reader.postprocessing import write_predictions
    from odqa.reader.processor import QAProcessor
    from odqa.reader.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(args.model)
    processor = QAProcessor(tokenizer, args.window_config())
    examples = processor.load_examples(args.dataset, args.split, True, args.fix_answer_start)
    report, predictions = round_trip(processor, examples, max_listed=args.max_listed)
    report = {"dataset": args.dataset, "model": args.model, **report}
    if args.output_dir:
        from pathlib import Path

        from odqa.utils.io import write_json

        write_predictions(predictions, None, args.output_dir)
        write_json(Path(args.output_dir) / "check_data_report.json", report)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0
