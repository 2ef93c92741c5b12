"""Every ``TrainerCallback`` of the reader, importable from one place.

They live by concern: :mod:`odqa.reader.freezing` (staged freezing), :mod:`odqa.reader.checkpointing`
(EM-gated checkpoints) and :mod:`odqa.reader.budget` (a wall-clock budget).
"""
from odqa.reader.budget import TimeBudgetCallback
from odqa.reader.checkpointing import (EMGatedCheckpointCallback, check_gated_checkpoint_args, load_checkpoint_weights,
                                       should_save_checkpoint)
from odqa.reader.freezing import (FREEZE_TYPES, FREEZE_WHEN, FreezeBackboneCallback, FreezeEmbeddingCallback,
                                  build_freeze_callback)

__all__ = ["EMGatedCheckpointCallback", "FREEZE_TYPES", "FREEZE_WHEN", "FreezeBackboneCallback",
           "FreezeEmbeddingCallback", "TimeBudgetCallback", "build_freeze_callback", "check_gated_checkpoint_args",
           "load_checkpoint_weights", "should_save_checkpoint"]
