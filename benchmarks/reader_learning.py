"""Reader learning on KorQuAD within a fixed CPU budget (the baseline later work must beat).

Splits the KorQuAD 1.0 dev half by article (even → train, odd → evaluation), measures the
training throughput of a plain PyTorch loop (windows padded to max_seq_len, random order)
against ours (dynamic padding + length-grouped batches, through QATrainer), fine-tunes the
offline all-MiniLM-L6-v2 for ``--budget_minutes`` of wall-clock time and reports EM/F1 on
the held-out articles.

The offline MiniLM is an ENGLISH uncased model (Hangul read as jamo, ~26% of syllables
[UNK]): its figures exercise the system, they are not what a Korean reader reaches.

  flock /tmp/odqa-cpu.lock python benchmarks/reader_learning.py --budget_minutes 30
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KORQUAD = REPO.parent / "shared" / "data" / "korquad" / "KorQuAD_v1.0_dev_half.json"


def split_by_article(path: Path, out_dir: Path) -> tuple[Path, Path]:
    payload = json.loads(path.read_text(encoding="utf-8"))
    paths = []
    for parity, name in ((0, "train_even.json"), (1, "eval_odd.json")):
        part = {"version": payload.get("version"), "data": payload["data"][parity::2]}
        (out_dir / name).write_text(json.dumps(part, ensure_ascii=False), encoding="utf-8")
        paths.append(out_dir / name)
    return paths[0], paths[1]


def plain_loop_throughput(model_name: str, features, max_seq_len: int, batch_size: int, steps: int) -> float:
    """Examples/s of a textbook loop: every window padded to max_seq_len, random batches."""
    import torch

    from odqa.reader.modeling import get_model

    model = get_model(model_name)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    cols = ["input_ids", "attention_mask", "token_type_ids", "start_positions", "end_positions"]
    order = torch.randperm(len(features))[: batch_size * (steps + 1)].tolist()
    pad_id = 0

    def batch_at(k):
        rows = [features[i] for i in order[k * batch_size:(k + 1) * batch_size]]
        out = {}
        for c in cols[:3]:
            out[c] = torch.tensor([r[c] + [pad_id] * (max_seq_len - len(r[c])) for r in rows])
        for c in cols[3:]:
            out[c] = torch.tensor([r[c] for r in rows])
        return out

    loss = model(**batch_at(0)).loss  # warm-up step, not timed
    loss.backward(); opt.step(); opt.zero_grad()
    start = time.perf_counter()
    for k in range(1, steps + 1):
        loss = model(**batch_at(k)).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(KORQUAD))
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--budget_minutes", type=float, default=30.0)
    parser.add_argument("--max_seq_len", type=int, default=384)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--baseline_steps", type=int, default=8)
    parser.add_argument("--max_eval_samples", type=int, default=None, help="smoke runs only")
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "reader_learning.json"))
    args = parser.parse_args()

    import torch

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
    baseline = plain_loop_throughput(args.model, train_features, args.max_seq_len, args.batch_size,
                                     args.baseline_steps)
    print(f"plain loop: {baseline:.2f} examples/s")

    reader_args = ReaderArguments(model=args.model, max_train_minutes=args.budget_minutes,
                                  description="benchmarks/reader_learning.py")
    data_args = ReaderDataArguments(train_dataset=str(train_file), eval_dataset=str(eval_file),
                                    max_seq_len=args.max_seq_len, max_eval_samples=args.max_eval_samples)
    training_args = ReaderTrainingArguments(
        output_dir=str(work / "reader"), eval_strategy="no", save_strategy="no", num_train_epochs=20,
        learning_rate=args.learning_rate, lr_scheduler_type="constant_with_warmup", warmup_steps=30,
        per_device_train_batch_size=args.batch_size, logging_steps=25, seed=42)
    start = time.perf_counter()
    results = train_reader(reader_args, data_args, training_args)
    wall = time.perf_counter() - start
    train = results["train"]
    report = {
        "model": args.model,
        "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
                   f"threads {torch.get_num_threads()}",
        "split": "KorQuAD 1.0 dev half by article: even → train, odd → eval",
        "train_examples": len(train_examples), "train_features": len(train_features),
        "mean_window_tokens": sum(lengths) / len(lengths),
        "budget_minutes": args.budget_minutes,
        "train_runtime_s": train.get("train_runtime"),
        "epochs_done": train.get("epoch"),
        "plain_loop_examples_per_s": baseline,
        "ours_examples_per_s": train.get("train_samples_per_second"),
        "eval_exact_match": results["eval"]["eval_exact_match"],
        "eval_f1": results["eval"]["eval_f1"],
        "eval_runtime_s": results["eval"]["eval_runtime"],
        "eval_windows_per_s": results["eval"]["eval_samples_per_second"],
        "wall_s_total": wall,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
