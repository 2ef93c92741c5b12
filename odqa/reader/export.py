"""`odqa export-reader`: a reader as a plain Hugging Face ``AutoModelForQuestionAnswering`` folder.

Examples:
  odqa export-reader --model e5-small-korquad --output_dir exported/e5-small-korquad-hf
  odqa export-reader --model outputs/exp1 --output_dir exported/exp1-hf --overwrite

Then, in any environment with transformers 4.x or 5.x (no odqa needed):
  AutoModelForQuestionAnswering.from_pretrained("exported/e5-small-korquad-hf")
  AutoTokenizer.from_pretrained("exported/e5-small-korquad-hf")

Why: that folder is what other runtimes and tools take (the transformers question-answering pipeline,
ONNX exporters, another team's notebook). The encoder's weights go under its family's own prefix
(``bert.``...), odqa's linear head becomes ``qa_outputs`` as is, so the exported model's start/end
logits equal odqa's. Only the ``linear`` head has a standard equivalent: readers with another head
(lstm_ln, ...) are odqa-only. What does not travel: odqa's post-processing (answers cut at morpheme
boundaries, spans compared across passages, the stored no-answer threshold) and titles prepended to
passages (``odqa_add_title``): a tool reading the export picks spans its own way.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from odqa.errors import ConfigError
from odqa.utils.args import parse_cli
from odqa.utils.io import atomic_directory, check_free_folder, write_json

logger = logging.getLogger(__name__)

# odqa's own config fields: meaningless to a plain *ForQuestionAnswering model
ODQA_CONFIG_KEYS = ("odqa_head", "odqa_head_dropout_ratio", "odqa_add_title", "label_smoothing_factor")
# loads tokenizer.json exactly as written, in transformers 4.x and 5.x alike
PORTABLE_TOKENIZER_CLASS = "PreTrainedTokenizerFast"


@dataclass
class ExportArguments:
    model: str = field(metadata={"help": "The reader: a folder written by train-mrc, or an alias (e5-small-korquad)."})
    output_dir: str = field(metadata={"help": "The folder to write (config.json, model.safetensors, tokenizer)."})
    format: str = field(default="hf", metadata={
        "help": "hf: AutoModelForQuestionAnswering (the only format for now).", "choices": ["hf"]})
    overwrite: bool = field(default=False, metadata={"help": "Replace a folder that already holds files."})


def portable_tokenizer_class(tokenizer_dir: Path) -> str | None:
    """The tokenizer class to name in the exported tokenizer_config.json.

    transformers 5 writes ``TokenizersBackend``, which 4.x does not know; a family class
    (``BertTokenizer``, ``XLMRobertaTokenizer``) makes 5.x rebuild the pipeline from the vocabulary with
    that family's defaults (lower-casing, accent stripping: Hangul turned into unknown tokens, or other
    offsets). ``PreTrainedTokenizerFast`` reads tokenizer.json as it is in both, so the export tokenizes
    exactly as odqa did. Without a tokenizer.json (a slow-only tokenizer) the class is left alone.
    """
    if not (tokenizer_dir / "tokenizer.json").is_file():
        return None
    return PORTABLE_TOKENIZER_CLASS


def hf_config(reader_config):
    """The backbone's config as a ``*ForQuestionAnswering`` config: odqa's fields dropped."""
    from transformers import MODEL_FOR_QUESTION_ANSWERING_MAPPING

    config = reader_config.__class__.from_dict(reader_config.to_dict())
    for key in ODQA_CONFIG_KEYS:
        if hasattr(config, key):
            delattr(config, key)
    qa_class = MODEL_FOR_QUESTION_ANSWERING_MAPPING.get(type(config), None)
    if qa_class is None:
        raise ConfigError(f"{config.model_type}: transformers has no AutoModelForQuestionAnswering class for this "
                          "model type, so the reader cannot be exported as one.")
    config.architectures = [qa_class.__name__]
    return config, qa_class


def to_hf_model(reader):
    """A ``*ForQuestionAnswering`` model holding ``reader``'s encoder and linear head (weights copied)."""
    if reader.head_name != "linear":
        raise ConfigError(f"this reader has the {reader.head_name!r} head, which is odqa-only: only readers with the "
                          "linear head export to AutoModelForQuestionAnswering (train with --head linear).")
    config, qa_class = hf_config(reader.config)
    qa_model = qa_class(config)
    base = qa_model.base_model
    missing, unexpected = base.load_state_dict(reader.backbone.state_dict(), strict=False)
    # a QA model's encoder has no pooler; everything else must match one to one
    unexpected = [k for k in unexpected if not k.startswith("pooler.")]
    if missing or unexpected:
        raise ConfigError(f"the {config.model_type} encoder does not map onto {qa_class.__name__}: missing "
                          f"{missing[:5]}, unexpected {unexpected[:5]}.")
    qa_model.qa_outputs.load_state_dict(reader.head.qa_outputs.state_dict())
    return qa_model.eval()


def export_reader(model: str, output_dir: str | Path, overwrite: bool = False) -> Path:
    """Write reader ``model`` (folder or alias) to ``output_dir`` as an HF QA folder, atomically."""
    from odqa.offline import resolve_model_name
    from odqa.reader.abstention import THRESHOLD_FILE
    from odqa.reader.modeling import load_reader
    from odqa.reader.tokenizer import load_tokenizer

    output_dir = Path(output_dir)
    check_free_folder(output_dir, overwrite)
    folder = resolve_model_name(model)  # an alias becomes its folder once, for model, tokenizer and threshold
    reader = load_reader(folder)
    qa_model = to_hf_model(reader)
    tokenizer = load_tokenizer(folder)
    with atomic_directory(output_dir) as tmp:
        qa_model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        tokenizer_class = portable_tokenizer_class(tmp)
        if tokenizer_class:
            config_file = tmp / "tokenizer_config.json"
            tokenizer_config = json.loads(config_file.read_text(encoding="utf-8"))
            tokenizer_config["tokenizer_class"] = tokenizer_class
            write_json(config_file, tokenizer_config)
        left_behind = ["answers cut at morpheme boundaries", "spans compared across passages"]
        if getattr(reader.config, "odqa_add_title", False):
            left_behind.append("titles prepended to passages (this reader was trained with them)")
        if (Path(folder) / THRESHOLD_FILE).is_file():
            left_behind.append(f"the no-answer threshold ({THRESHOLD_FILE})")
        write_json(tmp / "odqa_export.json", {"exported_from": str(model), "format": "hf",
                                              "architecture": type(qa_model).__name__,
                                              "odqa_only": left_behind})
    logger.info("exported %s to %s (%s)", model, output_dir, type(qa_model).__name__)
    return output_dir


def main(argv: list[str] | None = None) -> int:
    (args,) = parse_cli([ExportArguments], argv, prog="odqa export-reader", description=__doc__)
    path = export_reader(args.model, args.output_dir, overwrite=args.overwrite)
    print(f"exported {args.model} -> {path} (AutoModelForQuestionAnswering; load it with transformers 4.x or 5.x)")
    return 0
