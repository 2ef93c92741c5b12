"""Tokenizers for sparse retrieval, named by a short spec string that is saved in the index.

Specs: ``whitespace``; ``kiwi`` (Kiwi content morphemes) / ``kiwi:all`` / ``kiwi:NN,VV,SL``
(POS tag prefixes to keep); ``hf:<tokenizer name or path>`` (subword pieces of a model
tokenizer); ``char_ngram:<n>`` (``bigram`` = ``char_ngram:2``); and ``a+b`` to concatenate
the tokens of several tokenizers (each part keeps its own vocabulary, so a morpheme and an
identical bigram stay distinct terms). ``DEFAULT_TOKENIZER`` was chosen by measurement, see
docs/retrieval.md and benchmarks/retrieval_quality.py.
"""
from __future__ import annotations

import os
import re
from typing import Iterable, Protocol

from odqa.errors import ConfigError
from odqa.utils.kiwi import get_kiwi

DEFAULT_TOKENIZER = "kiwi+bigram"
# Kiwi tag prefixes of content morphemes: nouns, numerals, verb/adjective stems, roots,
# foreign words, hanja and numbers. Particles, endings and affixes are what they drop.
KIWI_CONTENT_POS = ("NN", "NR", "NP", "VV", "VA", "XR", "SL", "SH", "SN", "MAG", "MM")
_WORD = re.compile(r"\w+")
_CHUNK = 2048


class Tokenizer(Protocol):
    spec: str

    def tokenize(self, texts: list[str], show_progress: bool = False) -> list[list[str]]: ...


def progress(total: int, show: bool, desc: str, items: Iterable | None = None, unit: str = "passage"):
    """A progress bar over ``total`` items (disabled when ``show`` is false): wraps ``items`` when given,
    else use it as a context manager and call ``update``."""
    from tqdm.auto import tqdm

    return tqdm(items, total=total, desc=desc, unit=unit, disable=not show, mininterval=1.0)


class WhitespaceTokenizer:
    """Lower-cased whitespace-separated words: the baseline, keeps Korean particles attached."""

    spec = "whitespace"

    def tokenize(self, texts: list[str], show_progress: bool = False) -> list[list[str]]:
        return [t.lower().split() for t in progress(len(texts), show_progress, "whitespace", texts, unit="text")]


class CharNgramTokenizer:
    """Character n-grams inside each word (words shorter than n kept whole): robust to particles."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ConfigError(f"char_ngram needs n >= 1 (got {n}).")
        self.n = n
        self.spec = "bigram" if n == 2 else f"char_ngram:{n}"

    def _one(self, text: str) -> list[str]:
        n, out = self.n, []
        for word in _WORD.findall(text.lower()):
            if len(word) <= n:
                out.append(word)
            else:
                out.extend(word[i:i + n] for i in range(len(word) - n + 1))
        return out

    def tokenize(self, texts: list[str], show_progress: bool = False) -> list[list[str]]:
        return [self._one(t) for t in progress(len(texts), show_progress, self.spec, texts, unit="text")]


class KiwiTokenizer:
    """Kiwi morphemes whose POS tag starts with one of ``pos`` (all tags if ``pos`` is empty).

    Many texts are tokenized by Kiwi's own thread pool on every core (``num_workers``).
    """

    def __init__(self, pos: tuple[str, ...] | None = KIWI_CONTENT_POS, stopwords: Iterable[str] = (),
                 num_workers: int | None = None) -> None:
        self.pos = tuple(pos or ())
        self.stopwords = frozenset(stopwords)
        self.num_workers = num_workers or os.cpu_count() or 1
        if self.pos == KIWI_CONTENT_POS:
            self.spec = "kiwi"
        else:
            self.spec = "kiwi:" + (",".join(self.pos) if self.pos else "all")

    def _keep(self, tokens) -> list[str]:
        pos, stop = self.pos, self.stopwords
        return [t.form.lower() for t in tokens
                if (not pos or t.tag.startswith(pos)) and t.form not in stop]

    def tokenize(self, texts: list[str], show_progress: bool = False) -> list[list[str]]:
        kiwi = get_kiwi(self.num_workers)
        texts = [t if t.strip() else " " for t in texts]
        if len(texts) == 1:
            return [self._keep(kiwi.tokenize(texts[0]))]
        stream = kiwi.tokenize(texts)  # a generator fed by Kiwi's worker threads
        return [self._keep(toks) for toks in progress(len(texts), show_progress, "kiwi", stream, unit="text")]


class HFTokenizer:
    """Subword pieces of a transformers tokenizer (``hf:e5-small`` and ``hf:minilm`` work offline)."""

    def __init__(self, name: str) -> None:
        from transformers import AutoTokenizer

        from odqa.offline import resolve_model_name

        self.spec = f"hf:{name}"
        try:
            self._tok = AutoTokenizer.from_pretrained(resolve_model_name(name))
        except OSError as err:
            raise ConfigError(f"tokenizer {self.spec!r}: cannot load {name!r} ({err}). Give a local folder, "
                              f"or 'e5-small' / 'minilm' for the offline models.") from None

    def tokenize(self, texts: list[str], show_progress: bool = False) -> list[list[str]]:
        out: list[list[str]] = []
        starts = range(0, len(texts), _CHUNK)
        for i in progress(len(starts), show_progress, self.spec, starts, unit=f"chunk of {_CHUNK}"):
            # verbose=False: a passage longer than the model's window is fine here (nothing runs the model)
            ids = self._tok(texts[i:i + _CHUNK], add_special_tokens=False, verbose=False)["input_ids"]
            out.extend(self._tok.convert_ids_to_tokens(x) for x in ids)
        return out


class CombinedTokenizer:
    """Concatenation of several tokenizations; part i > 0 prefixes its tokens with ``i|``."""

    def __init__(self, parts: list[Tokenizer]) -> None:
        self.parts = parts
        self.spec = "+".join(p.spec for p in parts)

    def tokenize(self, texts: list[str], show_progress: bool = False) -> list[list[str]]:
        result = [list(toks) for toks in self.parts[0].tokenize(texts, show_progress)]
        for i, part in enumerate(self.parts[1:], 1):
            for row, toks in zip(result, part.tokenize(texts, show_progress)):
                row.extend(f"{i}|{t}" for t in toks)
        return result


def _make_one(spec: str, stopwords: Iterable[str]) -> Tokenizer:
    name, _, arg = spec.partition(":")
    name = name.strip().lower()
    if name == "whitespace":
        return WhitespaceTokenizer()
    if name == "bigram":
        return CharNgramTokenizer(2)
    if name in {"char_ngram", "ngram", "char"}:
        try:
            return CharNgramTokenizer(int(arg or 2))
        except ValueError:
            raise ConfigError(f"tokenizer {spec!r}: expected char_ngram:<n> with an integer n.") from None
    if name == "kiwi":
        if not arg:
            return KiwiTokenizer(stopwords=stopwords)
        pos = () if arg.lower() == "all" else tuple(p.strip().upper() for p in arg.split(",") if p.strip())
        return KiwiTokenizer(pos=pos, stopwords=stopwords)
    if name == "hf":
        if not arg:
            raise ConfigError(f"tokenizer {spec!r}: give a model, e.g. hf:klue/bert-base or hf:e5-small.")
        return HFTokenizer(arg)
    raise ConfigError(f"unknown tokenizer {spec!r}; use whitespace, kiwi, kiwi:all, kiwi:<POS,...>, "
                      f"hf:<model>, char_ngram:<n>, bigram, or a combination like kiwi+bigram.")


SPEC_NAMES = ("whitespace", "bigram", "char_ngram", "ngram", "char", "kiwi", "hf")


def is_tokenizer_spec(value: str) -> bool:
    """Whether ``value`` reads as a retrieval tokenizer spec (``kiwi+bigram``, ``hf:klue/bert-base``...)."""
    return all(part.partition(":")[0].strip().lower() in SPEC_NAMES for part in value.split("+"))


def make_tokenizer(spec: str | None = None, stopwords: Iterable[str] = ()) -> Tokenizer:
    """Build a tokenizer from its spec (``None`` -> ``DEFAULT_TOKENIZER``); stopwords apply to Kiwi parts."""
    spec = spec or DEFAULT_TOKENIZER
    parts = [_make_one(s, stopwords) for s in spec.split("+")]
    return parts[0] if len(parts) == 1 else CombinedTokenizer(parts)
