"""What each post-processing rule is worth: one forward pass, the answers read back several ways.

The reader trained by ``benchmarks/reader_learning.py`` (on the even articles of the KorQuAD half)
reads every question of the odd articles with its gold passage, once; the same logits are then
post-processed with each rule switched off in turn:

- trimming brackets/quotes at a span's edge whose partner is outside the span (``1698년)`` → ``1698년``);
- Korean morpheme boundaries (answers may end inside a token, before particles: ``정육점을`` → ``정육점``).

A rule stays on by default only if it helps here (EM/F1 with KorQuAD 1.0 rules).

  flock /tmp/odqa-cpu.lock python benchmarks/postprocessing_ablation.py
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reader_learning import DEFAULT_READER_DIR, shown_path  # noqa: E402
from report import KORQUAD, machine, publish  # noqa: E402

from odqa.data.split import split_by_article  # noqa: E402


@contextmanager
def bracket_trimming_off():
    """Post-processing as it was before edge brackets were trimmed (whitespace is still stripped)."""
    from odqa.reader import boundaries

    original = boundaries.trim_unbalanced_edges
    boundaries.trim_unbalanced_edges = boundaries.strip_whitespace
    try:
        yield
    finally:
        boundaries.trim_unbalanced_edges = original


def unbalanced_edges(text: str) -> bool:
    """A bracket or quote at an edge whose partner is not in the answer (whitespace aside)."""
    from odqa.reader.boundaries import strip_whitespace, trim_unbalanced_edges

    return trim_unbalanced_edges(text, 0, len(text)) != strip_whitespace(text, 0, len(text))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(KORQUAD))
    parser.add_argument("--reader_dir", default=str(DEFAULT_READER_DIR))
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_questions", type=int, default=None, help="smoke runs only")
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()
    if not Path(args.dataset).is_file():
        sys.exit(f"{args.dataset}: not found (the KorQuAD half lives in ../shared/data/korquad/).")
    if not (Path(args.reader_dir) / "config.json").is_file():
        sys.exit(f"{args.reader_dir}: no trained reader; run benchmarks/reader_learning.py first.")

    from odqa.metrics import compute_metrics
    from odqa.reader.extractive import ExtractiveReader
    from odqa.reader.postprocessing import postprocess_qa_predictions

    _, eval_file = split_by_article(Path(args.dataset), Path(tempfile.mkdtemp(prefix="odqa_ablation_")))
    reader = ExtractiveReader.from_pretrained(args.reader_dir, batch_size=args.batch_size, show_progress=True)
    examples = reader.processor.get_eval_examples(str(eval_file))
    if args.max_questions:
        examples = examples.select(range(min(args.max_questions, len(examples))))
    references = {row["id"]: row["answers"]["text"] for row in examples}
    features = reader.featurize(examples)
    start = time.perf_counter()
    logits = reader.forward(features)
    forward_seconds = time.perf_counter() - start
    window = reader.window

    def score(morpheme_boundaries: bool = True) -> tuple[dict, dict[str, str]]:
        predictions, _ = postprocess_qa_predictions(
            examples, features, logits, n_best_size=window.n_best_size, max_answer_length=window.max_answer_length,
            morpheme_boundaries=morpheme_boundaries, score_against_null=window.score_against_null)
        return compute_metrics(predictions, references), predictions

    rows = []
    default, default_predictions = score()
    rows.append(("all rules (the default)", default, default_predictions))
    with bracket_trimming_off():
        untrimmed, untrimmed_predictions = score()
    rows.append(("without edge-bracket trimming", untrimmed, untrimmed_predictions))
    rows.append(("without morpheme boundaries", *score(morpheme_boundaries=False)))
    changed = [(qid, untrimmed_predictions[qid], default_predictions[qid]) for qid in references
               if untrimmed_predictions[qid].strip() != default_predictions[qid].strip()]

    info = json.loads((Path(args.reader_dir) / "run_info.json").read_text(encoding="utf-8"))
    lines = [
        "## Post-processing rules, one at a time (`benchmarks/postprocessing_ablation.py`)", "",
        "Command: `flock /tmp/odqa-cpu.lock python benchmarks/postprocessing_ablation.py`  ",
        f"Machine: {machine()}.  ",
        f"Reader: `{shown_path(Path(args.reader_dir))}` ({info.get('reader', {}).get('model', '?')} trained by "
        f"`benchmarks/reader_learning.py` on the even articles, {info.get('budget_minutes', '?')} min budget).  ",
        f"Questions: {len(references)} of the odd articles of {Path(args.dataset).name}, gold passage; one forward "
        f"pass ({len(features)} windows, {forward_seconds:.0f} s), the same logits post-processed each way.", "",
        "| post-processing | EM | F1 | answers with an unpartnered bracket/quote at an edge |",
        "|---|---:|---:|---:|",
    ]
    for label, metrics, predictions in rows:
        edges = sum(unbalanced_edges(text) for text in predictions.values())
        lines.append(f"| {label} | {metrics['exact_match']:.2f} | {metrics['f1']:.2f} | {edges} |")
    lines += ["", f"Edge-bracket trimming changed {len(changed)} answers"
              + (", e.g. " + "; ".join(f"`{old}` → `{new}` (gold `{references[qid][0]}`)"
                                       for qid, old, new in changed[:4]) if changed else "") + "."]
    text = "\n".join(lines)
    publish("postprocessing_ablation", text, args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
