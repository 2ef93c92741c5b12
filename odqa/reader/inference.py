"""The reader's forward pass over windows: one loop for `QATrainer.predict` and the pipeline's reader.

Windows are sorted by length (longest first, so the memory peak comes at once) and batched with dynamic
padding, so a batch of short windows costs short-window time; the model runs under ``inference_mode``.
Logits come back in the features' order, each cut to its window's own length, ready for
:func:`odqa.reader.postprocessing.postprocess_qa_predictions`.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import numpy as np

from odqa.utils.progress import wants_progress

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@contextmanager
def timed(timings: dict[str, float] | None, stage: str) -> Iterator[None]:
    """Add the block's wall-clock seconds to ``timings[stage]`` (nothing when ``timings`` is None)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


def forward_windows(model, tokenizer, features, batch_size: int, *, device=None, show_progress: bool | None = None,
                    timings: dict[str, float] | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Start/end logits per window (each of the window's own length), in the features' order.

    ``features``: a ``Dataset`` (or dict of columns) with ``input_ids`` and the other model inputs it has.
    ``device``: where the inputs go (the model's; None leaves them on the CPU). ``timings`` (if given)
    accumulates ``collate`` (padding into tensors) and ``forward`` (the model call, copying logits out).
    """
    import torch
    from tqdm.auto import tqdm

    with timed(timings, "collate"):
        names = features.column_names if hasattr(features, "column_names") else list(features)
        columns = [c for c in MODEL_INPUTS if c in names]
        inputs = {c: list(features[c]) for c in columns}
        n = len(inputs["input_ids"])
        lengths = np.array([len(ids) for ids in inputs["input_ids"]])
        order = np.argsort(-lengths, kind="stable")
        starts: list[np.ndarray] = [np.empty(0, np.float32)] * n
        ends: list[np.ndarray] = [np.empty(0, np.float32)] * n
        batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    try:
        with torch.inference_mode():
            for batch in tqdm(batches, desc="read", unit="batch", disable=not wants_progress(show_progress, n)):
                with timed(timings, "collate"):
                    padded = tokenizer.pad({c: [inputs[c][i] for i in batch] for c in columns}, return_tensors="pt")
                    if device is not None:
                        padded = {k: v.to(device) for k, v in padded.items()}
                with timed(timings, "forward"):
                    output = model(**padded)
                    start_logits = output.start_logits.float().cpu().numpy()
                    end_logits = output.end_logits.float().cpu().numpy()
                    for row, i in enumerate(batch):
                        starts[i] = start_logits[row, :lengths[i]]
                        ends[i] = end_logits[row, :lengths[i]]
    finally:
        if was_training:
            model.train()
    return starts, ends
