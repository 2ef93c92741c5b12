"""Round-trip EM/F1 of `odqa check-data` on the KorQuAD 1.0 dev half, per tokenizer.

Which answers can a reader reach at all? Gold token positions go through the real
preprocessing and post-processing; what is lost is lost to the tokenizer or the windows.

Tokenizers compared:
* ``minilm`` — the offline all-MiniLM-L6-v2 (English uncased WordPiece: Hangul → jamo, some
  words → one [UNK]);
* ``wordpiece-raw`` — a 32k WordPiece trained with `tokenizers` on the raw Korean contexts
  (particles glued to words: 혐의로 is one token);
* ``wordpiece-morph`` — the same, its vocabulary trained on Kiwi morpheme-segmented text
  (as KLUE's vocabularies were) and applied to raw text;
* ``char`` — one token per character: the reference where every boundary is reachable;
* ``e5-small`` — multilingual-e5-small's XLM-R SentencePiece (the default reader).

Each is measured with token boundaries only (``--morpheme_boundaries false``: what the tokenizer alone
reaches); ``e5-small`` and ``wordpiece-raw`` also with odqa's default post-processing, which lets an
answer end inside its last token before Korean particles (``+ morpheme boundaries``).

  flock /tmp/odqa-cpu.lock python benchmarks/check_data_roundtrip.py [--no_write]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import KORQUAD, publish  # noqa: E402

DESCRIPTION = {
    "e5-small": "multilingual-e5-small (XLM-R SentencePiece Unigram, 250k pieces: particles often glued to words)",
    "minilm": "offline all-MiniLM-L6-v2 (English uncased WordPiece: Hangul → jamo, some words → one [UNK])",
    "wordpiece-raw": "WordPiece trained with `tokenizers` on the raw Korean text (particles glued to words)",
    "wordpiece-morph": "the same, its vocabulary trained on Kiwi morpheme-segmented text (as KLUE's were)",
    "char": "one token per character (every boundary reachable): the reference",
}


def morpheme_texts(texts: list[str]) -> list[str]:
    from kiwipiepy import Kiwi

    kiwi = Kiwi()
    return [" ".join(t.form for t in tokens) for tokens in kiwi.tokenize(texts)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(KORQUAD))
    parser.add_argument("--vocab_size", type=int, default=32000)
    parser.add_argument("--no_write", action="store_true", help="print only, do not update BENCHMARKS.md")
    args = parser.parse_args()

    from odqa.data import load_mrc_dataset
    from odqa.reader.check_data import round_trip
    from odqa.reader.processor import QAProcessor
    from odqa.reader.tokenizer import build_char_tokenizer, load_tokenizer, train_wordpiece_tokenizer

    examples = load_mrc_dataset(args.dataset, require_answers=True)
    texts = list(dict.fromkeys(examples["context"])) + list(examples["question"])
    tokenizers = {
        "e5-small": load_tokenizer("e5-small"),
        "minilm": load_tokenizer("minilm"),
        "wordpiece-raw": train_wordpiece_tokenizer(texts, args.vocab_size),
        "wordpiece-morph": train_wordpiece_tokenizer(morpheme_texts(texts), args.vocab_size),
        "char": build_char_tokenizer(texts),
    }
    runs = [(name, tokenizer, False) for name, tokenizer in tokenizers.items()]
    runs[1:1] = [("e5-small", tokenizers["e5-small"], True)]
    runs.append(("wordpiece-raw", tokenizers["wordpiece-raw"], True))
    results = {}
    for base, tokenizer, boundaries in runs:
        name = base + (" + morpheme boundaries" if boundaries else "")
        DESCRIPTION[name] = DESCRIPTION[base] + ("; answers may end inside a token before particles/copula"
                                                 if boundaries else "")
        report, _ = round_trip(QAProcessor(tokenizer, morpheme_boundaries=boundaries), examples, max_listed=2)
        results[name] = {
            "round_trip_exact_match": report["round_trip_exact_match"],
            "round_trip_f1": report["round_trip_f1"],
            "features": report["features"],
            "lost_by_cause": {k: v["count"] for k, v in report["lost_by_cause"].items()},
            "examples_of_loss": {k: v["examples"] for k, v in report["lost_by_cause"].items()},
        }
        print(name, json.dumps({k: results[name][k] for k in ("round_trip_exact_match", "lost_by_cause")},
                               ensure_ascii=False))
    settings = report["settings"]
    causes = ["boundary_inside_token", "longer_than_max_answer_length", "truncation", "other"]
    lines = [
        "## Can a tokenizer reach the answers? `check-data` round trip (`benchmarks/check_data_roundtrip.py`)", "",
        f"Command: `flock /tmp/odqa-cpu.lock python benchmarks/check_data_roundtrip.py --vocab_size {args.vocab_size}`  ",
        f"Data: {Path(args.dataset).name}, {len(examples)} questions; windows max_seq_length "
        f"{settings['max_seq_length']}, doc_stride {settings['doc_stride']}, max_query_length "
        f"{settings['max_query_length']}, max_answer_length {settings['max_answer_length']}. Gold token positions "
        "go through the real preprocessing and post-processing (`odqa check-data`); what is lost is lost to the "
        "tokenizer or the windows, so round-trip EM is the ceiling of any reader trained with that tokenizer.", "",
        "| tokenizer | windows | round-trip EM | F1 | lost: boundary inside a token | longer than max_answer_length "
        "| truncation | other |", "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lost = [str(r["lost_by_cause"].get(c, 0)) for c in causes]
        lines.append(f"| `{name}`: {DESCRIPTION[name]} | {r['features']} | {r['round_trip_exact_match']:.2f} | "
                     f"{r['round_trip_f1']:.2f} | " + " | ".join(lost) + " |")
    lines += ["", "One lost answer per tokenizer (gold → what the tokens allow):", ""]
    for name, r in results.items():
        for cause, items in r["examples_of_loss"].items():
            if items:
                ex = items[0]
                lines.append(f"- `{name}`, {cause}: gold {ex['gold']!r} → {ex.get('token_span_text', ex['predicted'])!r}")
                break
    text = "\n".join(lines)
    publish("check_data", text, args.no_write)


if __name__ == "__main__":
    main()
