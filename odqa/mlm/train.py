"""`odqa train-mlm` / `train_mlm.py`: domain-adaptive masked-language-model training of an encoder.

Examples:
  # e5-small on the sample passages, whole eojeol masked together; the adapted encoder lands in models/mlm
  odqa train-mlm --model e5-small --corpus data/sample/train.json data/sample/extra_passages.jsonl \\
      --output_dir models/mlm --whole_word_mask word --num_train_epochs 1

  # then fine-tune a reader (or a DPR retriever) from it, as from any encoder
  odqa train-mrc --model models/mlm ...

  # multi-GPU / TPU
  accelerate launch train_mlm.py --model klue/roberta-large --corpus wiki.json ...

Texts (odqa corpora or .txt files, one text per line) are tokenized, concatenated and cut into chunks of
--chunk_size tokens; each batch is masked afresh (--mlm_probability, 80% mask / 10% random / 10% kept),
whole words at a time (--whole_word_mask word: eojeol; morpheme: Kiwi morphemes; token: BERT's rule).
The evaluation chunks (--eval_corpus, else a --eval_fraction of the chunks) are masked once with
--eval_seed, so the perplexity printed before and after training is deterministic and comparable
across runs; both are saved in mlm_results.json. The encoder is saved without its MLM head, so
`train-mrc --model` and `train-dpr --dpr_model` take the folder as it is.
"""
from __future__ import annotations

import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transformers import TrainingArguments

from odqa.errors import ConfigError
from odqa.mlm.masking import WHOLE_WORD_MODES
from odqa.utils.args import parse_cli
from odqa.utils.io import write_json
from odqa.utils.logs import configure_cli_logging

logger = logging.getLogger("odqa.mlm")
RESULTS_FILE = "mlm_results.json"


@dataclass
class MLMArguments:
    _argument_group_name = "model and data"

    model: str = field(default="e5-small", metadata={
        "help": "Encoder to adapt: e5-small (offline), a hub name such as klue/roberta-large, or a folder. A "
                "checkpoint without an MLM head gets one (transform layer new, decoder tied to the embeddings)."})
    corpus: list[str] = field(default_factory=lambda: ["data/sample/train.json", "data/sample/extra_passages.jsonl"],
                              metadata={"help": "Texts: odqa corpora (wikipedia_documents.json, SQuAD/KorQuAD "
                                                "contexts, .jsonl/.csv, datasets folders) or .txt files."})
    eval_corpus: list[str] = field(default_factory=list, metadata={
        "help": "Texts for perplexity (default: --eval_fraction of the --corpus chunks, held out)."})
    eval_fraction: float = field(default=0.05, metadata={"help": "Share of chunks held out without --eval_corpus."})
    chunk_size: int = field(default=256, metadata={"help": "Tokens per training chunk (special tokens included)."})
    mlm_probability: float = field(default=0.15, metadata={"help": "Share of words (or tokens) masked."})
    whole_word_mask: str = field(default="word", metadata={
        "help": "Masking unit: word (every piece of an eojeol together), morpheme (Kiwi morphemes: particles "
                "masked apart from their nouns) or token (each token alone, BERT's rule).",
        "choices": list(WHOLE_WORD_MODES)})
    eval_seed: int = field(default=0, metadata={"help": "Seed of the fixed evaluation masking."})
    max_train_minutes: float | None = field(default=None, metadata={
        "help": "Stop training after this many minutes of wall-clock time."})
    head_warmup_steps: int = field(default=0, metadata={
        "help": "Train only the MLM head for the first N steps (encoder and word embeddings frozen), so a freshly "
                "initialised head (e5-small has none) does not push its random gradients into the encoder; "
                "0: off. On the KorQuAD split, 15 minutes of MLM without it left e5-small a far worse reader "
                "(BENCHMARKS.md)."})


@dataclass
class MLMTrainingArguments(TrainingArguments):
    _argument_group_name = "training: odqa's options and defaults"
    _inherited_group_name = "every other transformers TrainingArguments option"

    output_dir: str = field(default="models/mlm", metadata={"help": "Where the adapted encoder goes."})
    learning_rate: float = field(default=5e-5, metadata={"help": "Peak learning rate."})
    num_train_epochs: float = field(default=1.0, metadata={"help": "Passes over the chunks."})
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Chunks per step per device."})
    per_device_eval_batch_size: int = field(default=32, metadata={"help": "Chunks per evaluation step."})
    warmup_ratio: float = field(default=0.06, metadata={"help": "Share of steps warming the learning rate up."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    logging_steps: float = field(default=20, metadata={"help": "Log the training loss every N steps."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to checkpoint: no | steps | epoch."})
    save_total_limit: int | None = field(default=1, metadata={"help": "Checkpoints kept."})
    train_sampling_strategy: str = field(default="group_by_length", metadata={
        "help": "random | sequential | group_by_length (chunks are equal but the last of a corpus)."})
    remove_unused_columns: bool = field(default=False, metadata={
        "help": "Kept False: the collator needs the word ids the model does not take."})
    dataloader_pin_memory: bool = field(default=False, metadata={"help": "Pin memory (only useful on GPU)."})
    report_to: None | str | list[str] = field(default="none", metadata={"help": "Integrations to report to."})


def perplexity(trainer) -> float:
    loss = trainer.evaluate()["eval_loss"]
    return math.exp(min(loss, 50.0))


def train_mlm(args: MLMArguments, training_args: MLMTrainingArguments) -> dict:
    """Adapt the encoder; returns (and saves as mlm_results.json) perplexities, sizes and minutes."""
    import numpy as np
    from datasets import Dataset
    from transformers import Trainer, set_seed

    from odqa.mlm.data import chunk_texts, load_texts
    from odqa.mlm.masking import WholeWordMaskCollator, fixed_masking
    from odqa.mlm.model import head_is_tied, load_mlm_model
    from odqa.reader.budget import TimeBudgetCallback
    from odqa.reader.tokenizer import load_tokenizer

    if not 0.0 < args.eval_fraction < 1.0 and not args.eval_corpus:
        raise ConfigError(f"--eval_fraction must be in (0, 1) (got {args.eval_fraction}), or give --eval_corpus.")
    set_seed(training_args.seed)
    tokenizer = load_tokenizer(args.model)
    if tokenizer.mask_token_id is None:
        raise ConfigError(f"{args.model}: its tokenizer has no mask token, so it cannot be trained as an MLM.")
    chunks = chunk_texts(load_texts(args.corpus), tokenizer, args.chunk_size, args.whole_word_mask)
    if args.eval_corpus:
        train_chunks = chunks
        eval_chunks = chunk_texts(load_texts(args.eval_corpus), tokenizer, args.chunk_size, args.whole_word_mask)
    else:
        order = np.random.default_rng(args.eval_seed).permutation(len(chunks))
        n_eval = max(1, round(len(chunks) * args.eval_fraction))
        if n_eval >= len(chunks):
            raise ConfigError(f"only {len(chunks)} chunks: too few to hold some out; give more text or --eval_corpus.")
        eval_chunks = [chunks[i] for i in sorted(order[:n_eval])]
        train_chunks = [chunks[i] for i in sorted(order[n_eval:])]
    eval_rows = fixed_masking(eval_chunks, tokenizer, args.mlm_probability, seed=args.eval_seed)

    model = load_mlm_model(args.model)
    if not head_is_tied(model):
        logger.warning("%s: the MLM decoder is not tied to the word embeddings (the checkpoint's choice).", args.model)
    callbacks = [TimeBudgetCallback(args.max_train_minutes)] if args.max_train_minutes else []
    if args.head_warmup_steps < 0:
        raise ConfigError(f"--head_warmup_steps must be >= 0 (got {args.head_warmup_steps}).")
    if args.head_warmup_steps:
        from odqa.mlm.model import HeadWarmupCallback

        callbacks.append(HeadWarmupCallback(model, args.head_warmup_steps))
    trainer = Trainer(model=model, args=training_args, train_dataset=Dataset.from_list(train_chunks),
                      eval_dataset=Dataset.from_list(eval_rows), processing_class=tokenizer,
                      data_collator=WholeWordMaskCollator(tokenizer, args.mlm_probability, seed=training_args.seed),
                      callbacks=callbacks)
    before = perplexity(trainer)
    logger.info("perplexity before training: %.2f (%d evaluation chunks)", before, len(eval_rows))
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    minutes = (time.perf_counter() - start) / 60
    after = perplexity(trainer)
    logger.info("perplexity after training: %.2f", after)

    out = Path(training_args.output_dir)
    encoder = getattr(model, model.base_model_prefix)
    encoder.config.architectures = [type(encoder).__name__]
    encoder.save_pretrained(out)  # the encoder alone: train-mrc / train-dpr load it with AutoModel
    tokenizer.save_pretrained(out)
    results = {"model": args.model, "perplexity_before": before, "perplexity_after": after,
               "train_minutes": minutes, "train_chunks": len(train_chunks), "eval_chunks": len(eval_rows),
               "arguments": asdict(args), "log_history": trainer.state.log_history}
    write_json(out / RESULTS_FILE, results)
    return results


def main(argv: list[str] | None = None) -> int:
    args, training_args = parse_cli([MLMArguments, MLMTrainingArguments], argv, prog="odqa train-mlm",
                                    description=__doc__)
    configure_cli_logging(timestamps=True)
    results = train_mlm(args, training_args)
    print(json.dumps({k: results[k] for k in ("perplexity_before", "perplexity_after", "train_minutes",
                                              "train_chunks", "eval_chunks")} | {"output_dir": training_args.output_dir},
                     ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
