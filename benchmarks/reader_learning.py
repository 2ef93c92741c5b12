"""Reader learning on KorQuAD within a fixed CPU budget (the baseline later work must beat).

Splits the KorQuAD 1.0 dev half by article (even → train, odd → evaluation) and:

1. measures training throughput (windows/s) of the same model on the same windows, one setting at
   a time: a textbook loop (every window padded to max_seq_len, random batches, the model's own
   dropout), then dynamic padding with length-grouped batches, then attention dropout 0, then all
   encoder dropout 0 — so each gain is attributed to its cause;
2. fine-tunes the offline all-MiniLM-L6-v2 through ``train_reader`` (the code `odqa train-mrc` runs)
   with the fastest setting for ``--budget_minutes`` of wall-clock time, the linear learning-rate
   schedule sized from the measured throughput so that it ends near the budget;
3. reports EM/F1 (KorQuAD rules) on the held-out odd articles, gold passage given.

The offline MiniLM is an ENGLISH uncased model (Hangul read as jamo, ~26% of syllables [UNK]):
its figures exercise the system, they are not what a Korean reader reaches.

  flock /tmp/odqa-cpu.lock python benchmarks/reader_learning.py --budget_minutes 30
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

DEFAULT_READER_DIR = REPO / "models" / "bench" / "korquad_even_reader"


def shown_path(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def split_by_article(path: Path, out_dir: Path) -> tuple[Path, Path]:
    payload = json.loads(path.read_text(encoding="utf-8"))
    paths = []
    for parity, name in ((0, "train_even.json"), (1, "eval_odd.json")):
        part = {"version": payload.get("version"), "data": payload["data"][parity::2]}
        (out_dir / name).write_text(json.dumps(part, ensure_ascii=False), encoding="utf-8")
        paths.append(out_dir / name)
    return paths[0], paths[1]


def training_throughput(model_name: str, features, *, batch_size: int, steps: int, max_seq_len: int,
                        pad_id: int, pad_to_max: bool, grouped: bool, attention_dropout: float | None,
                        hidden_dropout: float | None, seed: int = 0) -> float:
    """Windows/s of forward + backward + AdamW steps on ``steps`` batches (after one untimed warm-up step)."""
    import torch

    from odqa.reader.modeling import get_model

    torch.manual_seed(seed)
    model = get_model(model_name, attention_dropout=attention_dropout, hidden_dropout=hidden_dropout)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    rows = random.Random(seed).sample(range(len(features)), batch_size * (steps + 1))
    if grouped:  # what group_by_length does inside a mega-batch: similar lengths share a batch
        rows.sort(key=lambda i: len(features[i]["input_ids"]), reverse=True)
    batches = [rows[k * batch_size:(k + 1) * batch_size] for k in range(steps + 1)]

    def tensors(batch_rows):
        items = [features[i] for i in batch_rows]
        width = max_seq_len if pad_to_max else max(len(r["input_ids"]) for r in items)
        out = {c: torch.tensor([r[c] + [pad_id if c == "input_ids" else 0] * (width - len(r[c])) for r in items])
               for c in ("input_ids", "attention_mask", "token_type_ids")}
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(KORQUAD))
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--budget_minutes", type=float, default=30.0)
    parser.add_argument("--max_seq_len", type=int, default=384)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--throughput_steps", type=int, default=6, help="timed steps per throughput setting")
    parser.add_argument("--max_eval_samples", type=int, default=None, help="smoke runs only")
    parser.add_argument("--reader_dir", default=str(DEFAULT_READER_DIR),
                        help="where the trained reader is saved (the inference benchmarks read it from here)")
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()

    from odqa.reader.processor import QAProcessor, WindowConfig
    from odqa.reader.tokenizer import load_tokenizer
    from odqa.reader.train import ReaderArguments, ReaderDataArguments, ReaderTrainingArguments, train_reader

    work = Path(tempfile.mkdtemp(prefix="odqa_reader_bench_"))
    train_file, eval_file = split_by_article(Path(args.dataset), work)

    tokenizer = load_tokenizer(args.model)
    processor = QAProcessor(tokenizer, WindowConfig(max_seq_length=args.max_seq_len))
    train_examples = processor.get_train_examples(str(train_file))
    train_features = processor.get_train_features(train_examples)
    lengths = [len(x) for x in train_features["input_ids"]]

    settings = [  # (label, pad_to_max, grouped, attention_dropout, hidden_dropout)
        ("textbook loop: padded to max_seq_len, random batches, model dropout (0.1)", True, False, None, None),
        ("+ dynamic padding, length-grouped batches", False, True, None, None),
        ("+ attention dropout 0 (`--attention_dropout 0`)", False, True, 0.0, None),
        ("+ hidden dropout 0 (`--hidden_dropout 0`)", False, True, 0.0, 0.0),
    ]
    throughput = []
    for label, pad_to_max, grouped, attention_dropout, hidden_dropout in settings:
        rate = training_throughput(args.model, train_features, batch_size=args.batch_size, steps=args.throughput_steps,
                                   max_seq_len=args.max_seq_len, pad_id=tokenizer.pad_token_id or 0,
                                   pad_to_max=pad_to_max, grouped=grouped, attention_dropout=attention_dropout,
                                   hidden_dropout=hidden_dropout)
        throughput.append((label, rate))
        print(f"{rate:6.2f} windows/s  {label}", flush=True)

    # size the linear schedule so that it ends about when the budget does (the budget still stops training)
    expected_windows = throughput[-1][1] * args.budget_minutes * 60 * 0.95
    epochs = max(expected_windows / len(train_features), 0.05)
    reader_args = ReaderArguments(model=args.model, max_train_minutes=args.budget_minutes, attention_dropout=0.0,
                                  hidden_dropout=0.0, description="benchmarks/reader_learning.py")
    data_args = ReaderDataArguments(train_dataset=str(train_file), eval_dataset=str(eval_file),
                                    max_seq_len=args.max_seq_len, max_eval_samples=args.max_eval_samples)
    training_args = ReaderTrainingArguments(
        output_dir=args.reader_dir, eval_strategy="no", save_strategy="no", num_train_epochs=round(epochs, 3),
        learning_rate=args.learning_rate, lr_scheduler_type="linear", warmup_steps=0.06,
        per_device_train_batch_size=args.batch_size, logging_steps=25, seed=42)
    start = time.perf_counter()
    results = train_reader(reader_args, data_args, training_args)
    wall = time.perf_counter() - start
    train, evaluation = results["train"], results["eval"]

    lines = [
        "## Reader learning: 30 CPU-minutes of fine-tuning (`benchmarks/reader_learning.py`)", "",
        f"Command: `flock /tmp/odqa-cpu.lock python benchmarks/reader_learning.py --budget_minutes {args.budget_minutes:g}"
        f" --max_seq_len {args.max_seq_len} --batch_size {args.batch_size} --learning_rate {args.learning_rate:g}`  ",
        f"Machine: {machine()}.  ",
        f"Data: {KORQUAD.name} split by article: the {len(train_examples)} questions of the even articles train "
        f"({len(train_features)} windows of max {args.max_seq_len} tokens, stride 128, mean "
        f"{sum(lengths) / len(lengths):.0f} tokens); the odd articles evaluate (gold passage given). {MINILM_NOTE}", "",
        "Training throughput, same windows, one change at a time "
        f"({args.throughput_steps} timed steps of {args.batch_size} windows each):", "",
        "| setting | windows/s | vs textbook |", "|---|---:|---:|",
    ]
    lines += [f"| {label} | {rate:.2f} | {rate / throughput[0][1]:.2f}x |" for label, rate in throughput]
    lines += [
        "",
        f"Fine-tuning with the last setting (linear head, lr {args.learning_rate:g}, linear decay sized to "
        f"{epochs:.2f} epochs, batch {args.batch_size}, seed 42): stopped after {train.get('train_runtime', 0) / 60:.1f} "
        f"min at epoch {train.get('epoch', 0):.2f}, {train.get('train_samples_per_second', 0):.2f} windows/s through "
        f"the Trainer (evaluation and saving excluded).", "",
        "| held-out odd articles | questions | EM | F1 | eval windows/s |", "|---|---:|---:|---:|---:|",
        f"| gold passage, KorQuAD 1.0 rules | {args.max_eval_samples or 'all'} | {evaluation['eval_exact_match']:.2f} | "
        f"{evaluation['eval_f1']:.2f} | {evaluation['eval_samples_per_second']:.2f} |",
        "",
        f"Whole run {wall / 60:.1f} min. The reader is saved in `{shown_path(Path(args.reader_dir))}` for the "
        "inference benchmarks.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        update_section("reader_learning", text)


if __name__ == "__main__":
    main()
