"""The reader's forward pass over windows: one loop for `QATrainer.predict` and the pipeline's reader.

Windows are sorted by length (longest first, so the memory peak comes at once) and cut into batches that
waste the least padding (:func:`length_batches`): a question's five windows of 380, 370, 200, 190 and 60
tokens are read as three batches rather than one padded to 380 — on a CPU a smaller batch costs little,
padding costs its full share. The model runs under ``inference_mode``.
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
# what one more model call costs, counted in padded tokens: splitting a batch pays only when it saves more
BATCH_OVERHEAD_TOKENS = 64


@contextmanager
def timed(timings: dict[str, float] | None, stage: str) -> Iterator[None]:
    """Add the block's wall-clock seconds to ``timings[stage]`` (nothing when ``timings`` is None)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


def length_batches(lengths, batch_size: int, overhead_tokens: int = BATCH_OVERHEAD_TOKENS) -> list[np.ndarray]:
    """Window indices in batches of at most ``batch_size``, longest first, cut where padding is wasted.

    Over the windows sorted by length, the cut points minimise the padded tokens read plus
    ``overhead_tokens`` per batch (dynamic programming over contiguous groups: a batch is padded to its
    first, longest window). Windows of similar lengths still fill whole batches.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    ordered = lengths[order]
    n = len(ordered)
    cost = np.zeros(n + 1)
    cut = np.zeros(n + 1, dtype=np.int64)
    for end in range(1, n + 1):
        starts = np.arange(max(0, end - batch_size), end)
        totals = cost[starts] + (end - starts) * ordered[starts] + overhead_tokens
        best = int(np.argmin(totals))
        cost[end], cut[end] = totals[best], starts[best]
    batches = []
    end = n
    while end > 0:
        batches.append(order[cut[end]:end])
        end = int(cut[end])
    return batches[::-1]


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
        starts: list[np.ndarray] = [np.empty(0, np.float32)] * n
        ends: list[np.ndarray] = [np.empty(0, np.float32)] * n
        batches = length_batches(lengths, batch_size, BATCH_OVERHEAD_TOKENS)
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
