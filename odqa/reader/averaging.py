"""`odqa average-readers`: one reader whose weights are the average of several fine-tuned readers.

Examples:
  odqa average-readers --models outputs/run_a outputs/run_b --output_dir outputs/averaged
  odqa average-readers --models outputs/run_a outputs/run_b --weights 0.6 0.4 --output_dir outputs/averaged

Why: readers fine-tuned from the same pretrained encoder (runs with another seed, another schedule length,
with or without retrieved negatives) land close enough in weight space that their average is itself a good
reader, and usually a better one than each ("model soups", Wortsman et al., 2022). Unlike an ensemble of
answers (`odqa ensemble`), the average reads at the cost of one model. On KorQuAD held-out articles two
e5-small readers trained with and without retrieved negatives (EM 63.92 and 64.32 alone) averaged to EM 66.78
(docs/reader.md). Readers that do not share a pretrained starting point do not average into anything useful:
this command checks that the architectures, heads, tokenizers and weight shapes match, not where the weights
came from.

The averaged folder holds the averaged weights, the first reader's config and tokenizer, and
``run_info.json`` naming its sources. A stored no-answer threshold is not carried over: the average scores
spans differently, so choose it again (`odqa choose-threshold`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from odqa.errors import ConfigError
from odqa.utils.args import parse_cli
from odqa.utils.io import atomic_directory, check_free_folder, write_json

logger = logging.getLogger(__name__)


@dataclass
class AverageArguments:
    models: list[str] = field(metadata={
        "help": "Two or more readers fine-tuned from the same pretrained model: folders written by train-mrc, "
                "or aliases (e5-small-korquad)."})
    output_dir: str = field(metadata={"help": "The folder to write the averaged reader to."})
    weights: list[float] | None = field(default=None, metadata={
        "help": "One weight per reader (normalised to sum to 1); default: all equal."})
    overwrite: bool = field(default=False, metadata={"help": "Replace a folder that already holds files."})


def normalised_weights(n_models: int, weights: list[float] | None) -> list[float]:
    """Equal weights by default; otherwise the given ones, checked and scaled to sum to 1."""
    if n_models < 2:
        raise ConfigError(f"average-readers needs two or more readers (--models), got {n_models}.")
    if weights is None:
        return [1.0 / n_models] * n_models
    if len(weights) != n_models:
        raise ConfigError(f"--weights has {len(weights)} values for {n_models} readers: give one per reader.")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ConfigError(f"--weights {weights}: weights must be non-negative and not all zero.")
    return [w / sum(weights) for w in weights]


def _signature(reader) -> dict:
    config = reader.config
    return {"model_type": config.model_type, "head": reader.head_name,
            "hidden_size": getattr(config, "hidden_size", None),
            "num_hidden_layers": getattr(config, "num_hidden_layers", None)}


def check_compatible(first_name: str, first, name: str, other) -> None:
    """Refuse readers that cannot be averaged with the first one, naming the reader and what differs."""
    a, b = _signature(first), _signature(other)
    for key in a:
        if a[key] != b[key]:
            raise ConfigError(f"{name}: its {key} is {b[key]!r} but {first_name}'s is {a[key]!r}; only readers of the "
                              "same architecture and head, fine-tuned from the same pretrained model, average.")
    shapes_a = {k: tuple(v.shape) for k, v in first.state_dict().items()}
    shapes_b = {k: tuple(v.shape) for k, v in other.state_dict().items()}
    if shapes_a != shapes_b:
        differing = sorted(set(shapes_a) ^ set(shapes_b)) or [k for k in shapes_a if shapes_a[k] != shapes_b[k]]
        raise ConfigError(f"{name}: its weights do not match {first_name}'s ({differing[:3]}); only readers "
                          "fine-tuned from the same pretrained model average.")


def average_state_dicts(state_dicts: Iterable[dict], weights: list[float]) -> dict:
    """The weighted average of floating-point tensors (summed in float32, cast back); other tensors (integer
    buffers such as position ids) are taken from the first. ``state_dicts`` may be a generator: one is read
    at a time, so averaging N readers holds the float32 sums and one reader, not N."""
    import torch

    sums: dict = {}
    first: dict = {}
    for state, weight in zip(state_dicts, weights, strict=True):
        if not first:
            first = {key: value.dtype if torch.is_floating_point(value) else value.clone()
                     for key, value in state.items()}
        for key, value in state.items():
            if torch.is_floating_point(value):
                scaled = value.detach().to(torch.float32) * weight
                sums[key] = sums[key].add_(scaled) if key in sums else scaled
    return {key: sums[key].to(kept) if key in sums else kept for key, kept in first.items()}


def average_readers(models: list[str], output_dir: str | Path, weights: list[float] | None = None,
                    overwrite: bool = False) -> Path:
    """Write the weighted average of ``models`` (folders or aliases) to ``output_dir``, atomically."""
    from odqa.offline import resolve_model_name
    from odqa.reader.modeling import load_reader
    from odqa.reader.tokenizer import load_tokenizer

    weights = normalised_weights(len(models), weights)
    output_dir = Path(output_dir)
    check_free_folder(output_dir, overwrite)
    folders = [resolve_model_name(m) for m in models]
    first, tokenizer = load_reader(folders[0]), load_tokenizer(folders[0])
    vocabulary = tokenizer.get_vocab()

    def state_dicts():  # one reader loaded at a time, each checked before it counts
        yield first.state_dict()
        for name, folder in zip(models[1:], folders[1:]):
            other = load_reader(folder)
            check_compatible(models[0], first, name, other)
            if load_tokenizer(folder).get_vocab() != vocabulary:
                raise ConfigError(f"{name}: its tokenizer's vocabulary differs from {models[0]}'s; readers to average "
                                  "must read the same tokens.")
            yield other.state_dict()

    first.load_state_dict(average_state_dicts(state_dicts(), weights))
    with atomic_directory(output_dir) as tmp:
        first.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "run_info.json", {
            "description": "weight average of fine-tuned readers (odqa average-readers)",
            "averaged_from": [{"model": m, "weight": w} for m, w in zip(models, weights)]})
    logger.info("averaged %d readers into %s", len(models), output_dir)
    return output_dir


def main(argv: list[str] | None = None) -> int:
    (args,) = parse_cli([AverageArguments], argv, prog="odqa average-readers", description=__doc__)
    path = average_readers(args.models, args.output_dir, weights=args.weights, overwrite=args.overwrite)
    print(f"averaged {len(args.models)} readers -> {path} (load it like any reader: --model {path})")
    return 0
