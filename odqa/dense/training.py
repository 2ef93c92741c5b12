"""`odqa train-dpr` / `train_dpr.py`: fine-tune the dual encoder of dense retrieval.

Loss: for a batch of B questions, each question's positive passage (its own context) must outscore the
other B - 1 positives (in-batch negatives) and every question's ``--num_hard_negatives`` hard negatives
(top bm25 passages of the training corpus that contain none of its answers): cross-entropy over
``q · p / temperature``. The passages are token windows (``--passage_window``, 128 by default), as the
index scores them (``odqa.dense.training_texts``). The loop runs on accelerate, so the same command runs
on CPU, on several GPUs or a TPU through ``accelerate launch train_dpr.py ...`` (bf16/fp16 with ``--mixed_precision``).
Recall@k on the evaluation set is measured before training, every ``--dpr_eval_steps`` steps and at
the end; the best encoder (by MRR@20, then R@1; the starting one included, so training that makes
retrieval worse leaves the start in place) is the one saved in ``--output_dir``.

Example (offline, 2 CPU cores): ``bash scripts/train_dpr_example.sh``.
"""
from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from odqa.errors import ConfigError
from odqa.utils.args import parse_cli
from odqa.utils.io import atomic_directory, write_json
from odqa.utils.logs import configure_cli_logging

logger = logging.getLogger("odqa.train_dpr")
EVAL_CUTS = (1, 5, 20)


@dataclass
class DPRArguments:
    output_dir: str = field(metadata={"help": "Where the best dual encoder is saved (dual_encoder.json + HF folders)."})
    train_dataset: str = field(metadata={"help": "Questions with their contexts and answers: SQuAD/KorQuAD JSON, "
                                                 "flat JSON/JSONL/CSV or a datasets folder (as train-mrc reads)."})
    eval_dataset: Optional[str] = field(default=None, metadata={
        "help": "Held-out questions; recall@k over their own contexts is measured during training."})
    dpr_model: str = field(default="e5-small", metadata={
        "help": "Encoder to start from: e5-small (offline), a hub name, a folder, or a saved dual encoder."})
    separate_encoders: bool = field(default=False, metadata={
        "help": "Train a question and a passage encoder (the DPR way) instead of one shared encoder."})
    run_name: Optional[str] = field(default=None, metadata={"help": "Name of the run (wandb, run_info.json)."})
    description: str = field(default="", metadata={"help": "Free text stored in run_info.json."})
    dpr_learning_rate: float = field(default=1e-5, metadata={"help": "AdamW learning rate."})
    dpr_epochs: float = field(default=1.0, metadata={"help": "Passes over the training questions."})
    dpr_warmup_steps: float = field(default=0.1, metadata={
        "help": "Warmup steps of the linear schedule; a value below 1 is a fraction of all steps."})
    dpr_weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    dpr_train_batch_size: int = field(default=8, metadata={"help": "Questions per step (in-batch negatives: B - 1)."})
    dpr_eval_batch_size: int = field(default=32, metadata={"help": "Passages per batch when encoding for evaluation."})
    dpr_eval_steps: int = field(default=0, metadata={"help": "Evaluate every N steps (0: before and after only)."})
    num_hard_negatives: int = field(default=1, metadata={"help": "bm25 hard negatives per question."})
    temperature: float = field(default=0.01, metadata={
        "help": "Scores are q.p / temperature on normalised vectors. 0.01 (e5's own) kept zero-shot e5-small's "
                "space and improved it; 0.05 made it worse in the same run (docs/retrieval.md)."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Steps accumulated per update."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping (0: off)."})
    passage_max_length: int = field(default=256, metadata={
        "help": "Passage tokens in training batches (evaluation and indexing use the encoder's own limit, 512)."})
    passage_window: int = field(default=128, metadata={
        "help": "Train on windows of this many tokens, as an index built with --passage_window scores passages "
                "(by their best window; 128 is the index default): a question's positive is a window of its "
                "context holding the answer, its hard negatives bm25's best windows of other contexts; "
                "evaluation uses the same windows. 0: whole passages, cut at --passage_max_length."})
    window_stride: Optional[int] = field(default=None, metadata={
        "help": "Tokens between window starts (default: half the window)."})
    query_max_length: int = field(default=64, metadata={"help": "Question tokens in training batches."})
    freeze_passage_encoder: bool = field(default=False, metadata={
        "help": "Train only the question encoder against passage vectors computed once by the starting encoder "
                "(which stays the passage encoder: separate encoders are saved). Every training passage is a "
                "negative of every question, and a step encodes questions only: many times cheaper on CPU. "
                "Use it alone or after a full run (--dpr_model that run's output)."})
    freeze_word_embeddings: bool = field(default=True, metadata={
        "help": "Keep the word-embedding matrix fixed (e5-small: 82%% of the weights; much faster on CPU)."})
    max_train_samples: Optional[int] = field(default=None, metadata={"help": "Use only the first N questions."})
    max_eval_samples: Optional[int] = field(default=None, metadata={"help": "Evaluate on the first N questions."})
    max_train_minutes: Optional[float] = field(default=None, metadata={"help": "Stop training after this long."})
    mixed_precision: str = field(default="no", metadata={"help": "accelerate mixed precision: no, fp16 or bf16."})
    seed: int = field(default=42, metadata={"help": "Random seed (shuffling, initialisation)."})
    wandb_project: Optional[str] = field(default=None, metadata={"help": "Log to this wandb project (opt-in)."})


def load_training_pairs(path: str, max_samples: int | None = None) -> list[dict[str, Any]]:
    """Rows {id, question, context, answers[list of texts]} of an MRC dataset."""
    from odqa.data.loading import read_mrc_rows

    rows = [r for r in read_mrc_rows(path) if r.get("context") and r.get("question")]
    if not rows:
        raise ConfigError(f"{path}: no questions with a context; DPR training needs each question's passage.")
    return rows[:max_samples] if max_samples else rows


def evaluation_set(rows: list[dict[str, Any]]) -> tuple[Any, list[Any]]:
    """The rows' own (deduplicated) contexts as a corpus, and the questions with their gold passage in it."""
    from odqa.retrieval.corpus import Corpus
    from odqa.retrieval.evaluation import questions_with_gold

    corpus = Corpus.from_mrc_dataset(rows)
    return corpus, questions_with_gold(rows, corpus)


def evaluate_encoder(encoder, corpus, questions, batch_size: int, passage_window: int = 0,
                     window_stride: int | None = None) -> dict[str, float]:
    """Recall@k / MRR@20 of ``encoder`` retrieving over ``corpus`` (see :func:`evaluation_set`)."""
    from odqa.retrieval.dense import DenseRetriever
    from odqa.retrieval.evaluation import evaluate_retriever

    # torch, whatever the corpus size: the weights change between evaluations, and int8 would recalibrate (about
    # a minute) at each one and blur the comparison with its rounding
    # the passages as training cut them: windows (as the default index scores them), or whole passages with
    # --passage_window 0 (40% less encoding per evaluation, comparable with runs made before windows)
    retriever = DenseRetriever(batch_size=batch_size, encoder=encoder, backend="torch", passage_window=passage_window,
                               window_stride=window_stride).index(corpus)
    metrics = evaluate_retriever(retriever, questions, list(EVAL_CUTS))
    return {k: round(float(metrics[k]), 2) for k in ("recall@1", "recall@5", "recall@20", "mrr@20")}


def contrastive_loss(q: Any, p: Any, temperature: float, positives: list[int] | None = None,
                     ignored: list[list[int]] | None = None) -> Any:
    """NLL of each question's own passage (column i, or ``positives[i]``) among all passages ``p``, on
    ``q . p / temperature``; the columns ``ignored[i]`` take no part in question i's loss."""
    import torch

    logits = q @ p.T / temperature
    if ignored and any(ignored):
        mask = torch.zeros_like(logits, dtype=torch.bool)
        for i, columns in enumerate(ignored):
            mask[i, columns] = True
        logits = logits.masked_fill(mask, float("-inf"))
    labels = torch.arange(len(q)) if positives is None else torch.tensor(positives)
    return torch.nn.functional.cross_entropy(logits, labels.to(logits.device))


def with_own_question_encoder(encoder: Any) -> Any:
    """The DPR layout of ``encoder``: a shared encoder's question side becomes a copy of its own, so the
    passage side (and every vector it made) stays as it is."""
    import copy
    from dataclasses import replace

    from odqa.dense.encoder import DualEncoder

    if not encoder.config.shared:
        return encoder
    return DualEncoder(copy.deepcopy(encoder.q_model), encoder.p_model, encoder.tokenizer,
                       replace(encoder.config, shared=False), encoder.source)


def _better(new: dict[str, float], best: dict[str, float] | None) -> bool:
    return best is None or (new["mrr@20"], new["recall@1"]) > (best["mrr@20"], best["recall@1"])


def train_dpr(args: DPRArguments) -> dict[str, Any]:
    """Train, evaluate, keep the best; returns the run info also written to ``output_dir/run_info.json``."""
    import torch
    from accelerate import Accelerator
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    from odqa.dense.encoder import DualEncoder, DualEncoderConfig
    from odqa.dense.training_texts import context_windows, contrastive_batch, whole_contexts
    from odqa.dense.windows import check_window

    if args.dpr_train_batch_size < 2 and args.num_hard_negatives < 1 and not args.freeze_passage_encoder:
        raise ConfigError("with --dpr_train_batch_size 1 and no hard negatives there is nothing to contrast; "
                          "raise one of them.")
    stride = check_window(args.passage_window, args.window_stride)
    if args.passage_window > args.passage_max_length:
        raise ConfigError(f"--passage_window {args.passage_window} is longer than --passage_max_length "
                          f"{args.passage_max_length}: every window would be cut; raise --passage_max_length or "
                          "lower --passage_window (0: whole passages).")
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    accelerator = Accelerator(mixed_precision=args.mixed_precision,
                              gradient_accumulation_steps=args.gradient_accumulation_steps,
                              log_with="wandb" if args.wandb_project else None)
    rows = load_training_pairs(args.train_dataset, args.max_train_samples)
    eval_rows = load_training_pairs(args.eval_dataset, args.max_eval_samples) if args.eval_dataset else None
    eval_corpus, eval_questions = evaluation_set(eval_rows) if eval_rows else (None, None)
    contexts = list(dict.fromkeys(r["context"] for r in rows))
    questions = [r["question"] for r in rows]

    base = DualEncoderConfig(shared=not args.separate_encoders)
    # --passage_max_length/--query_max_length bound the TRAINING batches; encoding for evaluation and for
    # indexes later uses the encoder's own config (512 passage tokens by default)
    encoder = DualEncoder.from_pretrained(args.dpr_model, base)
    start = time.perf_counter()
    # a frozen passage side makes every training text a negative of every question: nothing to mine
    hard = 0 if args.freeze_passage_encoder else args.num_hard_negatives
    units = context_windows(rows, contexts, encoder.tokenizer, args.passage_window, stride, hard) \
        if args.passage_window else whole_contexts(rows, contexts, hard)
    mining_seconds = time.perf_counter() - start
    passage_vectors = None
    if args.freeze_passage_encoder:
        encoder = with_own_question_encoder(encoder)
        encoder.p_model.requires_grad_(False)
        passage_vectors = torch.from_numpy(encoder.encode_passages(units.texts, args.dpr_eval_batch_size))
        models = [encoder.q_model]
    else:
        models = [encoder.q_model] if encoder.config.shared else [encoder.q_model, encoder.p_model]
    if args.freeze_word_embeddings:
        for model in models:
            model.get_input_embeddings().weight.requires_grad_(False)
    params = [p for model in models for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.dpr_weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=args.dpr_learning_rate)
    steps_per_epoch = math.ceil(len(rows) / args.dpr_train_batch_size / args.gradient_accumulation_steps)
    total_steps = max(1, math.ceil(steps_per_epoch * args.dpr_epochs))
    warmup = int(args.dpr_warmup_steps * total_steps) if args.dpr_warmup_steps < 1 else int(args.dpr_warmup_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    prepared = accelerator.prepare(*models, optimizer, scheduler)
    models, optimizer, scheduler = list(prepared[:len(models)]), prepared[-2], prepared[-1]
    q_model, p_model = models[0], models[-1]
    cfg = encoder.config
    if args.wandb_project:
        accelerator.init_trackers(args.wandb_project, config=asdict(args),
                                  init_kwargs={"wandb": {"name": args.run_name}})

    history = []
    best = None

    def evaluate(step: int) -> None:
        nonlocal best
        if eval_rows is None:
            return
        for model in models:
            model.eval()
        entry = {"step": step, **evaluate_encoder(encoder, eval_corpus, eval_questions, args.dpr_eval_batch_size,
                                                       args.passage_window, args.window_stride)}
        history.append(entry)
        logger.info("step %d: %s", step, entry)
        if _better(entry, best):  # the starting encoder counts: training must beat it to replace it
            best = entry
            _save(encoder, args.output_dir, accelerator)

    evaluate(0)
    started, step, losses = time.perf_counter(), 0, []
    order = list(range(len(rows)))
    progress = tqdm(total=total_steps, desc="train-dpr", unit="step", disable=not accelerator.is_main_process)
    stopped_early = False
    while step < total_steps and not stopped_early:
        random.shuffle(order)
        for i in range(0, len(order), args.dpr_train_batch_size):
            batch_ids = order[i:i + args.dpr_train_batch_size]
            if len(batch_ids) < 2 and args.num_hard_negatives < 1:
                continue
            for model in models:
                model.train()
            with accelerator.accumulate(*models):
                if passage_vectors is None:
                    step_questions, passages, positives, ignored = contrastive_batch(batch_ids, questions, units)
                    q = encoder.embed(q_model, step_questions, cfg.query_prefix, args.query_max_length,
                                      accelerator.device)
                    p = encoder.embed(p_model, passages, cfg.passage_prefix, args.passage_max_length,
                                      accelerator.device)
                    loss = contrastive_loss(q, p, args.temperature, positives, ignored)
                else:  # every training text, as the frozen passage encoder made them
                    chosen = [random.choice(units.positives[j]) for j in batch_ids]
                    q = encoder.embed(q_model, [questions[j] for j in batch_ids], cfg.query_prefix,
                                      args.query_max_length, accelerator.device)
                    loss = contrastive_loss(q, passage_vectors.to(q.device), args.temperature, chosen,
                                            [units.siblings(t) for t in chosen])
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(params, args.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            step += 1
            losses.append(float(loss.detach()))
            progress.update(1)
            progress.set_postfix(loss=f"{losses[-1]:.3f}")
            if args.wandb_project:
                accelerator.log({"train/loss": losses[-1], "train/lr": scheduler.get_last_lr()[0]}, step=step)
            if args.dpr_eval_steps and step % args.dpr_eval_steps == 0 and step < total_steps:
                evaluate(step)
            if args.max_train_minutes and time.perf_counter() - started > args.max_train_minutes * 60:
                stopped_early = True
                break
            if step >= total_steps:
                break
    progress.close()
    train_seconds = time.perf_counter() - started
    evaluate(step)
    if eval_rows is None:
        _save(encoder, args.output_dir, accelerator)  # nothing to compare with: keep the last
    info = {"run_name": args.run_name, "description": args.description, "args": asdict(args),
            "train_questions": len(rows), "train_passages": len(contexts), "train_texts": len(units.texts),
            "hard_negatives_mined": sum(len(n) for n in units.negatives), "mining_seconds": round(mining_seconds, 1),
            "steps": step, "train_seconds": round(train_seconds, 1), "stopped_by_time_budget": stopped_early,
            "questions_per_second": round(step * args.dpr_train_batch_size * args.gradient_accumulation_steps
                                          / train_seconds, 2) if train_seconds else None,
            "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
            "losses": [round(x, 4) for x in losses],
            "eval_history": history, "best_eval": best,
            "improved_over_start": bool(history) and best is not history[0]}
    write_json(Path(args.output_dir) / "run_info.json", info)
    if args.wandb_project:
        accelerator.end_training()
    return info


def _save(encoder, output_dir: str, accelerator) -> None:
    """The encoder as it is now, replacing the folder atomically (run_info.json is written after)."""
    if not accelerator.is_main_process:
        return
    with atomic_directory(output_dir) as tmp:
        encoder.save_pretrained(tmp)


def main(argv: list[str] | None = None) -> int:
    (args,) = parse_cli([DPRArguments], argv, prog="odqa train-dpr", description=__doc__)
    configure_cli_logging(timestamps=True)
    info = train_dpr(args)
    print(json.dumps({"output_dir": args.output_dir, "steps": info["steps"], "train_seconds": info["train_seconds"],
                      "first_eval": info["eval_history"][0] if info["eval_history"] else None,
                      "best_eval": info["best_eval"]}, ensure_ascii=False))
    return 0
