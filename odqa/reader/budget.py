"""A wall-clock budget for training (fixed-budget comparisons on CPU)."""
from __future__ import annotations

import logging
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from odqa.errors import ConfigError

logger = logging.getLogger(__name__)


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
