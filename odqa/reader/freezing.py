"""Staged freezing of the reader's encoder (``--freeze_type``, ``--freeze_epoch``, ``--freeze_when``).

How it fits transformers 5's ``Trainer`` (checked against ``trainer.py``): the optimizer is built
in ``_prepare_for_training`` over parameters with ``requires_grad`` *before* ``on_train_begin``
fires. Freezing in ``on_train_begin`` therefore keeps the frozen parameters inside the optimizer;
while frozen they get no gradient (``zero_grad`` sets grads to ``None``) and torch optimizers skip
parameters without a gradient — weight decay included — so they stay byte-identical, and once
unfrozen they are updated like the rest. Freezing late (``when="last"``) relies on the same rule.
"""
from __future__ import annotations

import logging
import math
from typing import Any

from torch import nn
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from odqa.errors import ConfigError

logger = logging.getLogger(__name__)

FREEZE_TYPES = ("none", "embedding", "backbone")
FREEZE_WHEN = ("first", "last")


class _FreezeCallback(TrainerCallback):
    """Keep some modules frozen for ``freeze_epochs`` epochs: the first ones (``when="first"``: frozen at
    train begin, unfrozen once ``state.epoch >= freeze_epochs``) or the last ones (``when="last"``: frozen
    once ``state.epoch >= state.num_train_epochs - freeze_epochs``). ``inf`` epochs: the whole run."""

    what = "modules"

    def __init__(self, freeze_epochs: float, when: str = "first") -> None:
        if freeze_epochs is None or math.isnan(freeze_epochs) or freeze_epochs < 0:
            raise ConfigError(f"freeze epochs must be a number >= 0, got {freeze_epochs!r}.")
        if when not in FREEZE_WHEN:
            raise ConfigError(f"unknown freeze position {when!r}: choose one of {', '.join(FREEZE_WHEN)}.")
        self.freeze_epochs = float(freeze_epochs)
        self.when = when
        self._frozen: list[nn.Parameter] = []
        self._done = False

    def modules_to_freeze(self, model: nn.Module) -> list[nn.Module]:
        raise NotImplementedError

    @property
    def is_frozen(self) -> bool:
        return bool(self._frozen)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       model: nn.Module | None = None, optimizer: Any = None, **kwargs: Any) -> None:
        self._done = False
        if self.when == "last" or model is None or self.freeze_epochs <= 0 or (state.epoch or 0.0) >= self.freeze_epochs:
            return
        self._freeze(model, optimizer)

    def _freeze(self, model: nn.Module, optimizer: Any = None) -> None:
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
        logger.info("froze %d %s parameters (%s %g epochs)", sum(p.numel() for p in params), self.what, self.when,
                    self.freeze_epochs)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    model: nn.Module | None = None, **kwargs: Any) -> None:
        epoch = state.epoch or 0.0
        if self.when == "first":
            if self._frozen and epoch >= self.freeze_epochs:
                self._unfreeze()
                logger.info("unfroze the %s at epoch %.3f (step %d)", self.what, epoch, state.global_step)
        elif (not self._frozen and not self._done and model is not None and self.freeze_epochs > 0
              and epoch >= (state.num_train_epochs or 0) - self.freeze_epochs):
            self._freeze(model)
            self._done = True  # frozen until the end of training

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
                 embeddings_name: str | None = None, when: str = "first") -> None:
        super().__init__(freeze_epochs, when)
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

    def __init__(self, freeze_epochs: float, backbone_name: str | None = None, when: str = "first") -> None:
        super().__init__(freeze_epochs, when)
        self.backbone_name = backbone_name

    def modules_to_freeze(self, model: nn.Module) -> list[nn.Module]:
        from odqa.reader.modeling import find_backbone

        return [find_backbone(model, name=self.backbone_name)]


def build_freeze_callback(freeze_type: str, freeze_epoch: float, backbone_name: str | None = None,
                          when: str = "first") -> _FreezeCallback | None:
    """The callback for ``--freeze_type``/``--freeze_epoch``/``--freeze_when``, or None when nothing is frozen."""
    if freeze_type not in FREEZE_TYPES:
        raise ConfigError(f"unknown freeze type {freeze_type!r}: choose one of {', '.join(FREEZE_TYPES)}.")
    if freeze_type == "none":
        return None
    if freeze_epoch is None or math.isnan(freeze_epoch) or freeze_epoch < 0:
        raise ConfigError(f"--freeze_epoch must be >= 0 (epochs, fractions allowed), got {freeze_epoch!r}.")
    if freeze_epoch == 0:
        return None
    if freeze_type == "embedding":
        return FreezeEmbeddingCallback(freeze_epoch, backbone_name=backbone_name, when=when)
    return FreezeBackboneCallback(freeze_epoch, backbone_name=backbone_name, when=when)


