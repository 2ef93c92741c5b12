"""Loading the reader's tokenizer by name, alias or folder, with a clear error."""
from __future__ import annotations

import os

from odqa.errors import ConfigError
from odqa.offline import resolve_model_name


def load_tokenizer(name_or_path: str):
    """A fast tokenizer for ``name_or_path`` (``minilm`` = the offline all-MiniLM-L6-v2)."""
    from transformers import AutoTokenizer

    resolved = resolve_model_name(name_or_path)
    looks_local = os.path.sep in resolved or resolved.startswith(".")
    if looks_local and not os.path.exists(resolved):
        raise ConfigError(f"{resolved}: no such model or tokenizer folder. Pass a local folder, a hub name, "
                          "or `minilm` for the offline all-MiniLM-L6-v2.")
    try:
        return AutoTokenizer.from_pretrained(resolved, use_fast=True)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot load a tokenizer from {name_or_path!r} ({err.__class__.__name__}: "
                          f"{str(err).splitlines()[0]}). Offline, pass a local folder or `minilm`.") from None
