"""EM-gated checkpointing: a checkpoint is kept only when the reader got better.

After each optimizer step the ``Trainer`` loop calls ``on_step_end`` (``DefaultFlowCallback`` sets
``should_evaluate``/``should_save`` there), then ``_maybe_log_save_evaluate``: ``evaluate()`` →
``on_evaluate`` → ``_determine_best_metric`` → ``if control.should_save: _save_checkpoint`` (which
rotates old checkpoints, sparing ``state.best_model_checkpoint``) → ``on_save``. ``on_evaluate`` is
the last word before saving, so the gate decides there (checked against transformers 5's ``trainer.py``).
"""
from __future__ import annotations

import json
import logging
import math
import os
from typing import Any

from torch import nn
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from odqa.errors import ConfigError, ODQAError

logger = logging.getLogger(__name__)


def _finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def should_save_checkpoint(best_loss: float | None, best_em: float | None,
                           loss: float | None, em: float | None) -> bool:
    """Save if the eval loss went down, or — loss not down — if EM went above its best so far.

    Rules:
    * ``best_loss``/``best_em`` are the lowest loss / highest EM *seen at any earlier
      evaluation* (None if none was finite yet).
    * While no finite metric has been seen at all (both bests None) every evaluation saves:
      there is no checkpoint to fall back on yet ("the first evaluation always saves").
    * A missing, NaN or infinite metric never counts as an improvement; the decision then
      rests on the other metric. A finite value with no finite best yet is an improvement.
    * Improvements are strict: an equal loss or EM does not save.
    """
    if best_loss is None and best_em is None:
        return True
    loss, em = _finite(loss), _finite(em)
    loss_down = loss is not None and (best_loss is None or loss < best_loss)
    em_up = em is not None and (best_em is None or em > best_em)
    return loss_down or em_up


def strategy_name(value: Any) -> str:
    """An eval/save strategy as its string (``IntervalStrategy`` or str)."""
    return str(getattr(value, "value", value))


def check_gated_checkpoint_args(args: TrainingArguments) -> None:
    """Raise :class:`ConfigError` unless ``args`` let the EM gate own checkpointing.

    The gate decides at evaluations, so saving must follow the eval schedule
    (``save_strategy == eval_strategy``, equal steps), and the Trainer's own best-model logic
    (``load_best_model_at_end``/``metric_for_best_model``) must be off: it would re-point
    ``best_model_checkpoint`` and let rotation delete the gate's best checkpoint.
    """
    eval_strategy, save_strategy = strategy_name(args.eval_strategy), strategy_name(args.save_strategy)
    if eval_strategy == "no":
        raise ConfigError("EM-gated checkpointing needs evaluations: set --eval_strategy to steps or epoch "
                          "(and give an eval dataset).")
    if save_strategy != eval_strategy:
        raise ConfigError(f"EM-gated checkpointing decides at evaluations: --save_strategy ({save_strategy}) "
                          f"must equal --eval_strategy ({eval_strategy}).")
    if eval_strategy == "steps" and args.eval_steps is not None and args.save_steps != args.eval_steps:
        raise ConfigError(f"EM-gated checkpointing decides at evaluations: --save_steps ({args.save_steps}) "
                          f"must equal --eval_steps ({args.eval_steps}).")
    if args.load_best_model_at_end or args.metric_for_best_model is not None:
        raise ConfigError("EM-gated checkpointing keeps and reloads the best checkpoint itself: drop "
                          "--load_best_model_at_end and --metric_for_best_model (and a reduce-on-plateau "
                          "scheduler, which sets metric_for_best_model).")


class EMGatedCheckpointCallback(TrainerCallback):
    """Save a checkpoint only when eval loss improves, or EM improves while loss does not.

    Requirements on the Trainer (checked at train begin, see :func:`check_gated_checkpoint_args`):
    ``save_strategy == eval_strategy`` with the same steps, and ``load_best_model_at_end`` /
    ``metric_for_best_model`` unset. The metrics must reach ``on_evaluate`` (as
    ``Trainer.evaluate`` and ``QATrainer.evaluate`` do).

    The last checkpoint saved is the best one (each save is an improvement); it is recorded as
    ``state.best_model_checkpoint`` so ``save_total_limit`` rotation never deletes it, and with
    ``load_best_at_end`` its weights are loaded back into the model when training ends.
    Evaluations outside ``train()`` and at step 0 (``eval_on_start``) never change the bests.
    Checkpoints are looked for under ``args.output_dir`` (no hyper-parameter-search run dirs).
    """

    def __init__(self, metric_name: str = "eval_exact_match", loss_name: str = "eval_loss",
                 load_best_at_end: bool = True) -> None:
        self.metric_name = metric_name
        self.loss_name = loss_name
        self.load_best_at_end = load_best_at_end
        self.best_loss: float | None = None
        self.best_em: float | None = None
        self.best_checkpoint: str | None = None
        self._pending: str | None = None
        self._previous_best: str | None = None
        self._training = False
        self._warned_missing: set[str] = set()

    # -- state
    def _update_bests(self, loss: float | None, em: float | None) -> None:
        loss, em = _finite(loss), _finite(em)
        if loss is not None and (self.best_loss is None or loss < self.best_loss):
            self.best_loss = loss
        if em is not None and (self.best_em is None or em > self.best_em):
            self.best_em = em

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        check_gated_checkpoint_args(args)
        self.best_loss = self.best_em = None
        # On resume, the bests are the extremes of the evaluations already logged.
        for entry in state.log_history:
            if entry.get("step", 0) > 0 and (self.loss_name in entry or self.metric_name in entry):
                self._update_bests(entry.get(self.loss_name), entry.get(self.metric_name))
        best = state.best_model_checkpoint
        self.best_checkpoint = best if best and os.path.isdir(best) else None
        self._pending = None
        self._training = True

    # -- the gate owns saving: no save unless an evaluation approves it
    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:
        control.should_save = False

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        control.should_save = False

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    metrics: dict[str, float] | None = None, **kwargs: Any) -> None:
        if not self._training or state.global_step == 0:
            return
        metrics = metrics or {}
        for name, other in ((self.metric_name, self.loss_name), (self.loss_name, self.metric_name)):
            if name not in metrics and name not in self._warned_missing:
                logger.warning("%s is not among the eval metrics (%s): checkpoints are gated on %s alone.",
                               name, ", ".join(sorted(metrics)), other)
                self._warned_missing.add(name)
        loss, em = metrics.get(self.loss_name), metrics.get(self.metric_name)
        save = should_save_checkpoint(self.best_loss, self.best_em, loss, em)
        logger.info("step %d: %s=%s %s=%s (best %s / %s) -> %s", state.global_step, self.loss_name, loss,
                    self.metric_name, em, self.best_loss, self.best_em, "save" if save else "skip")
        self._update_bests(loss, em)
        control.should_save = save
        if save:
            # Point best_model_checkpoint at the folder about to be written, so the rotation run
            # inside _save_checkpoint keeps it and may already delete the previous best.
            self._pending = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            self._previous_best = state.best_model_checkpoint
            state.best_model_checkpoint = self._pending

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                **kwargs: Any) -> None:
        if self._pending is None:
            return
        if os.path.isdir(self._pending):
            self.best_checkpoint = self._pending
        else:  # the save went elsewhere (e.g. a hyper-parameter-search run dir): keep the old pointer
            logger.warning("expected checkpoint %s was not written; keeping %s as best", self._pending,
                           self._previous_best)
            state.best_model_checkpoint = self._previous_best
        self._pending = None

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     model: nn.Module | None = None, **kwargs: Any) -> None:
        self._training = False
        if not self.load_best_at_end or model is None:
            return
        if self.best_checkpoint is None:
            logger.warning("no checkpoint was saved during training: keeping the final weights.")
            return
        load_checkpoint_weights(model, self.best_checkpoint)
        logger.info("loaded the best checkpoint %s (eval loss %s, %s %s)", self.best_checkpoint, self.best_loss,
                    self.metric_name, self.best_em)


def load_checkpoint_weights(model: nn.Module, folder: str) -> None:
    """Load ``model.safetensors`` (or its shards) from ``folder`` into ``model``, strictly.

    Keys the model ties to others (not written by ``save_pretrained``) may be absent.
    """
    from safetensors.torch import load_file

    single = os.path.join(folder, "model.safetensors")
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.isfile(single):
        files = [single]
    elif os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            files = [os.path.join(folder, name) for name in sorted(set(json.load(f)["weight_map"].values()))]
    else:
        raise ODQAError(f"{folder}: no model.safetensors in this checkpoint, cannot load the best weights.")
    state_dict: dict[str, Any] = {}
    for file in files:
        state_dict.update(load_file(file))
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    tied = set(getattr(model, "all_tied_weights_keys", None) or {})
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise ODQAError(f"{folder}: checkpoint does not match the model (missing {missing[:5]}, "
                        f"unexpected {unexpected[:5]}).")


