"""Trainer callbacks for the reader: staged freezing and EM-gated checkpointing.

How they fit transformers 5's ``Trainer`` (checked against ``trainer.py``):

* The optimizer is built in ``_prepare_for_training`` over parameters with ``requires_grad``
  *before* ``on_train_begin`` fires. Freezing in ``on_train_begin`` therefore keeps the frozen
  parameters inside the optimizer; while frozen they get no gradient (``zero_grad`` sets grads
  to ``None``) and torch optimizers skip parameters without a gradient — weight decay included —
  so they stay byte-identical, and once unfrozen they are updated like the rest.
* After each optimizer step the loop calls ``on_step_end`` (``DefaultFlowCallback`` sets
  ``should_evaluate``/``should_save`` there), then ``_maybe_log_save_evaluate``: ``evaluate()``
  → ``on_evaluate`` → ``_determine_best_metric`` → ``if control.should_save: _save_checkpoint``
  (which rotates old checkpoints, sparing ``state.best_model_checkpoint``) → ``on_save``.
  ``on_evaluate`` is the last word before saving, so the gate decides there.
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

FREEZE_TYPES = ("none", "embedding", "backbone")


# ---------------------------------------------------------------------------- freezing
class _FreezeCallback(TrainerCallback):
    """Freeze some modules at train begin; unfreeze once ``state.epoch >= freeze_epochs``."""

    what = "modules"

    def __init__(self, freeze_epochs: float) -> None:
        if freeze_epochs is None or math.isnan(freeze_epochs) or freeze_epochs < 0:
            raise ConfigError(f"freeze epochs must be a number >= 0, got {freeze_epochs!r}.")
        self.freeze_epochs = float(freeze_epochs)
        self._frozen: list[nn.Parameter] = []

    def modules_to_freeze(self, model: nn.Module) -> list[nn.Module]:
        raise NotImplementedError

    @property
    def is_frozen(self) -> bool:
        return bool(self._frozen)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       model: nn.Module | None = None, optimizer: Any = None, **kwargs: Any) -> None:
        if model is None or self.freeze_epochs <= 0 or (state.epoch or 0.0) >= self.freeze_epochs:
            return
        # Only parameters that are trainable now: never unfreeze what the user froze on purpose.
        params = [p for m in self.modules_to_freeze(model) for p in m.parameters() if p.requires_grad]
        if optimizer is not None:
            in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
            if any(id(p) not in in_optimizer for p in params):
                raise ConfigError(
                    f"the {self.what} to freeze are not in the optimizer, so they would never be trained after "
                    "unfreezing: do not pass an optimizer built over a partly frozen model together with a "
                    "freeze callback.")
        for p in params:
            p.requires_grad_(False)
        self._frozen = params
        logger.info("froze %d %s parameters until epoch %g", sum(p.numel() for p in params), self.what,
                    self.freeze_epochs)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:
        if self._frozen and (state.epoch or 0.0) >= self.freeze_epochs:
            self._unfreeze()
            logger.info("unfroze the %s at epoch %.3f (step %d)", self.what, state.epoch, state.global_step)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        self._unfreeze()  # hand the model back trainable, even if training stopped early

    def _unfreeze(self) -> None:
        for p in self._frozen:
            p.requires_grad_(True)
        self._frozen = []


class FreezeEmbeddingCallback(_FreezeCallback):
    """Keep the embeddings fixed for the first ``freeze_epochs`` epochs (fractions allowed).

    Useful when the vocabulary is poorly covered by the training set: the rare rows are not
    dragged around by a randomly initialised head in the first steps.
    """

    what = "embedding"

    def __init__(self, freeze_epochs: float, backbone_name: str | None = None,
                 embeddings_name: str | None = None) -> None:
        super().__init__(freeze_epochs)
        self.backbone_name = backbone_name
        self.embeddings_name = embeddings_name

    def modules_to_freeze(self, model: nn.Module) -> list[nn.Module]:
        from odqa.reader.modeling import find_embeddings

        return [find_embeddings(model, name=self.embeddings_name, backbone_name=self.backbone_name)]


class FreezeBackboneCallback(_FreezeCallback):
    """Train only the head for the first ``freeze_epochs`` epochs, then the whole model.

    A fresh LSTM/CNN head sends large, noisy gradients into the encoder at first; warming the
    head up alone protects the pretrained weights.
    """

    what = "backbone"

    def __init__(self, freeze_epochs: float, backbone_name: str | None = None) -> None:
        super().__init__(freeze_epochs)
        self.backbone_name = backbone_name

    def modules_to_freeze(self, model: nn.Module) -> list[nn.Module]:
        from odqa.reader.modeling import find_backbone

        return [find_backbone(model, name=self.backbone_name)]


def build_freeze_callback(freeze_type: str, freeze_epoch: float,
                          backbone_name: str | None = None) -> _FreezeCallback | None:
    """The callback for ``--freeze_type``/``--freeze_epoch``, or None when nothing is frozen."""
    if freeze_type not in FREEZE_TYPES:
        raise ConfigError(f"unknown freeze type {freeze_type!r}: choose one of {', '.join(FREEZE_TYPES)}.")
    if freeze_type == "none":
        return None
    if freeze_epoch is None or math.isnan(freeze_epoch) or freeze_epoch < 0:
        raise ConfigError(f"--freeze_epoch must be >= 0 (epochs, fractions allowed), got {freeze_epoch!r}.")
    if freeze_epoch == 0:
        return None
    if freeze_type == "embedding":
        return FreezeEmbeddingCallback(freeze_epoch, backbone_name=backbone_name)
    return FreezeBackboneCallback(freeze_epoch, backbone_name=backbone_name)


# ---------------------------------------------------------------------------- EM-gated saving
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


def _strategy(value: Any) -> str:
    return str(getattr(value, "value", value))


def check_gated_checkpoint_args(args: TrainingArguments) -> None:
    """Raise :class:`ConfigError` unless ``args`` let the EM gate own checkpointing.

    The gate decides at evaluations, so saving must follow the eval schedule
    (``save_strategy == eval_strategy``, equal steps), and the Trainer's own best-model logic
    (``load_best_model_at_end``/``metric_for_best_model``) must be off: it would re-point
    ``best_model_checkpoint`` and let rotation delete the gate's best checkpoint.
    """
    eval_strategy, save_strategy = _strategy(args.eval_strategy), _strategy(args.save_strategy)
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


# ---------------------------------------------------------------------------- time budget
class TimeBudgetCallback(TrainerCallback):
    """Stop training after ``minutes`` of wall-clock time (checked after every step).

    For fixed-budget comparisons on CPU ("what does 30 minutes of training reach?"): the
    scheduler still follows ``num_train_epochs``/``max_steps``, so pair it with a constant
    learning-rate schedule when the budget, not the step count, is the limit.
    """

    def __init__(self, minutes: float) -> None:
        if minutes <= 0:
            raise ConfigError(f"the time budget must be positive, got {minutes} minutes.")
        self.seconds = minutes * 60.0
        self.started: float | None = None
        self.stopped_early = False

    def exclude(self, seconds: float) -> None:
        """Do not count ``seconds`` (e.g. an evaluation run from another callback) against the budget."""
        self.seconds += seconds

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        import time

        self.started = time.monotonic()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> TrainerControl:
        import time

        if self.started is not None and time.monotonic() - self.started >= self.seconds:
            logger.info("time budget of %.1f min reached at step %d; stopping.", self.seconds / 60, state.global_step)
            self.stopped_early = True
            control.should_training_stop = True
        return control
