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
* ``char`` — one token per character: the reference where every boundary is reachable.

  python benchmarks/check_data_roundtrip.py [--output benchmarks/results/check_data.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KORQUAD = REPO.parent / "shared" / "data" / "korquad" / "KorQuAD_v1.0_dev_half.json"


def morpheme_texts(texts: list[str]) -> list[str]:
    from kiwipiepy import Kiwi

    kiwi = Kiwi()
    return [" ".join(t.form for t in tokens) for tokens in kiwi.tokenize(texts)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=str(KORQUAD))
    parser.add_argument("--vocab_size", type=int, default=32000)
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "check_data.json"))
    args = parser.parse_args()

    from odqa.data import load_mrc_dataset
    from odqa.reader.check_data import round_trip
    from odqa.reader.processor import QAProcessor
    from odqa.reader.tokenizer import build_char_tokenizer, load_tokenizer, train_wordpiece_tokenizer

    examples = load_mrc_dataset(args.dataset, require_answers=True)
    texts = list(dict.fromkeys(examples["context"])) + list(examples["question"])
    tokenizers = {
        "minilm": load_tokenizer("minilm"),
        "wordpiece-raw": train_wordpiece_tokenizer(texts, args.vocab_size),
        "wordpiece-morph": train_wordpiece_tokenizer(morpheme_texts(texts), args.vocab_size),
        "char": build_char_tokenizer(texts),
    }
    results = {}
    for name, tokenizer in tokenizers.items():
        report, _ = round_trip(QAProcessor(tokenizer), examples, max_listed=2)
        results[name] = {
            "round_trip_exact_match": report["round_trip_exact_match"],
            "round_trip_f1": report["round_trip_f1"],
            "features": report["features"],
            "lost_by_cause": {k: v["count"] for k, v in report["lost_by_cause"].items()},
            "examples_of_loss": {k: v["examples"] for k, v in report["lost_by_cause"].items()},
        }
        print(name, json.dumps({k: results[name][k] for k in ("round_trip_exact_match", "lost_by_cause")},
                               ensure_ascii=False))
    payload = {"dataset": args.dataset, "examples": len(examples), "settings": report["settings"],
               "vocab_size": args.vocab_size, "results": results}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
