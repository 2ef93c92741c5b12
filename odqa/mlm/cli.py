"""`odqa build-tokenizer` and `odqa expand-vocab`.

Examples:
  # a morpheme-aware WordPiece vocabulary (the KLUE way) from the sample passages, then its answer ceiling
  odqa build-tokenizer --corpus data/sample/train.json --kind wordpiece --vocab_size 8000 \\
      --morpheme_aware --output_dir models/tok-wp-morph
  odqa check-data --dataset data/sample/validation.json --model models/tok-wp-morph

  # add domain words to e5-small (new embedding rows start as the mean of their old pieces)
  odqa expand-vocab --model e5-small --tokens 훈민정음 경복궁 --output_dir models/e5-small-plus
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from odqa.errors import ConfigError
from odqa.mlm.vocab import TOKENIZER_KINDS
from odqa.utils.args import parse_cli


@dataclass
class BuildTokenizerArguments:
    output_dir: str = field(metadata={"help": "Folder for the tokenizer (AutoTokenizer loads it)."})
    corpus: list[str] = field(default_factory=lambda: ["data/sample/train.json", "data/sample/extra_passages.jsonl"],
                              metadata={"help": "Texts: odqa corpora or .txt files (one text per line)."})
    kind: str = field(default="wordpiece", metadata={"help": "wordpiece (## pieces) or unigram (▁ pieces).",
                                                      "choices": list(TOKENIZER_KINDS)})
    vocab_size: int = field(default=32000, metadata={"help": "Vocabulary size to learn."})
    morpheme_aware: bool = field(default=False, metadata={
        "help": "Learn the vocabulary on Kiwi-segmented text, particles and endings as their own pieces."})


@dataclass
class ExpandVocabArguments:
    model: str = field(metadata={"help": "Model whose tokenizer and embeddings to extend (alias, hub name, folder)."})
    output_dir: str = field(metadata={"help": "Folder for the extended model + tokenizer."})
    tokens: list[str] = field(default_factory=list, metadata={"help": "Tokens to add."})
    tokens_file: Optional[str] = field(default=None, metadata={"help": "A file of tokens to add, one per line."})


def build_main(argv: list[str] | None = None) -> int:
    from odqa.mlm.data import load_texts
    from odqa.mlm.vocab import build_tokenizer

    (args,) = parse_cli([BuildTokenizerArguments], argv, prog="odqa build-tokenizer", description=__doc__)
    tokenizer = build_tokenizer(load_texts(args.corpus), args.kind, args.vocab_size, args.morpheme_aware,
                                args.output_dir)
    print(json.dumps({"output_dir": args.output_dir, "kind": args.kind, "vocab_size": len(tokenizer),
                      "morpheme_aware": args.morpheme_aware}, ensure_ascii=False))
    return 0


def expand_main(argv: list[str] | None = None) -> int:
    from odqa.mlm.vocab import expand_vocabulary

    (args,) = parse_cli([ExpandVocabArguments], argv, prog="odqa expand-vocab", description=__doc__)
    tokens = list(args.tokens)
    if args.tokens_file:
        path = Path(args.tokens_file)
        if not path.is_file():
            raise ConfigError(f"{path}: tokens file not found.")
        tokens += path.read_text(encoding="utf-8").splitlines()
    if not any(t.strip() for t in tokens):
        raise ConfigError("give --tokens or --tokens_file: there is nothing to add.")
    print(json.dumps(expand_vocabulary(args.model, tokens, args.output_dir), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(build_main())
