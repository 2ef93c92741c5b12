"""Vocabularies: train one (WordPiece or Unigram, raw or morpheme-aware) and add tokens to a model's.

*Morpheme-aware* (the KLUE way): the vocabulary is learned on text segmented by Kiwi, so stems, particles
and endings become pieces of their own; every particle or ending learned that way is then also made a
continuation piece (``##이`` for WordPiece, ``이`` without ``▁`` for Unigram). The result reads raw text
(no Kiwi at inference) yet splits 세종이 into 세종 + 이, so answers that end before a particle are reachable
— ``odqa check-data`` measures that ceiling.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable, Sequence

from odqa.errors import ConfigError

TOKENIZER_KINDS = ("wordpiece", "unigram")
_EOJEOL = re.compile(r"\S+")
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SP_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def segment_morphemes(texts: Iterable[str]) -> tuple[list[str], set[str]]:
    """Texts with a space between the morphemes of every eojeol (surface forms, as written), and the set
    of morphemes that appeared inside an eojeol (after its first morpheme: particles, endings, suffixes)."""
    from odqa.utils.kiwi import get_kiwi

    kiwi = get_kiwi()
    segmented, inner = [], set()
    for text in texts:
        tokens = kiwi.tokenize(text)
        words = []
        for match in _EOJEOL.finditer(text):
            pieces = [text[t.start:t.start + t.len] for t in tokens
                      if match.start() <= t.start < match.end() and t.len > 0]
            pieces = pieces or [match.group()]
            if "".join(pieces) != match.group():  # Kiwi normalised something: keep the eojeol as written
                pieces = [match.group()]
            inner.update(pieces[1:])
            words.append(" ".join(pieces))
        segmented.append(" ".join(words))
    return segmented, inner


def build_tokenizer(texts: Sequence[str], kind: str = "wordpiece", vocab_size: int = 32000,
                    morpheme_aware: bool = False, output_dir: str | Path | None = None):
    """A fast tokenizer ``AutoTokenizer`` loads back (BERT specials for WordPiece, XLM-R's for Unigram)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if kind not in TOKENIZER_KINDS:
        raise ConfigError(f"unknown tokenizer kind {kind!r}: choose one of {', '.join(TOKENIZER_KINDS)}.")
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise ConfigError("no text to train a tokenizer on.")
    inner: set[str] = set()
    if morpheme_aware:
        texts, inner = segment_morphemes(texts)
    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=BERT_SPECIALS))
        specials = dict(unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
                        mask_token="[MASK]")
        single, pair = "[CLS] $A [SEP]", "[CLS] $A [SEP] $B:1 [SEP]:1"
        cls, sep = "[CLS]", "[SEP]"
    else:
        tok = Tokenizer(models.Unigram())
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        tok.train_from_iterator(texts, trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=SP_SPECIALS,
                                                                unk_token="<unk>"))
        specials = dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>", cls_token="<s>",
                        sep_token="</s>", mask_token="<mask>")
        single, pair = "<s> $A </s>", "<s> $A </s> </s> $B </s>"
        cls, sep = "<s>", "</s>"
    if inner:
        tok = _add_continuation_pieces(tok, inner, kind)
    tok.post_processor = processors.TemplateProcessing(
        single=single, pair=pair, special_tokens=[(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=512, **specials)
    if output_dir is not None:
        fast.save_pretrained(str(output_dir))
    return fast


def _add_continuation_pieces(tok, inner: set[str], kind: str):
    """Every learned particle/ending also as a piece that continues a word."""
    from tokenizers import Tokenizer

    spec = json.loads(tok.to_str())
    model = spec["model"]
    if kind == "wordpiece":
        vocab = model["vocab"]
        for piece in sorted(inner):
            if piece in vocab and f"##{piece}" not in vocab:
                vocab[f"##{piece}"] = len(vocab)
    else:
        scores = {piece: score for piece, score in model["vocab"]}
        for piece in sorted(inner):
            if f"▁{piece}" in scores and piece not in scores:
                model["vocab"].append([piece, scores[f"▁{piece}"]])
                scores[piece] = scores[f"▁{piece}"]
    return Tokenizer.from_str(json.dumps(spec))


def expand_vocabulary(model_name_or_path: str, new_tokens: Sequence[str], output_dir: str | Path) -> dict:
    """Add ``new_tokens`` to a model's tokenizer, resize its embeddings and set each new row to the mean of
    the rows of the pieces the old tokenizer split that token into; save model and tokenizer together."""
    import torch
    from transformers import AutoModel

    from odqa.offline import resolve_model_name
    from odqa.reader.tokenizer import load_tokenizer

    path = resolve_model_name(model_name_or_path)
    tokenizer = load_tokenizer(model_name_or_path)
    vocab = tokenizer.get_vocab()
    wanted = list(dict.fromkeys(t.strip() for t in new_tokens if t.strip()))
    fresh = [t for t in wanted if t not in vocab]
    pieces = {t: tokenizer(t, add_special_tokens=False)["input_ids"] for t in fresh}
    model = AutoModel.from_pretrained(path)
    added = tokenizer.add_tokens(fresh)
    old_rows = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(len(tokenizer))
    weight = model.get_input_embeddings().weight
    with torch.no_grad():
        for token in fresh:
            row = tokenizer.convert_tokens_to_ids(token)
            if pieces[token]:
                weight[row] = weight[pieces[token]].mean(dim=0)
    output_dir = Path(output_dir)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return {"requested": len(wanted), "already_known": len(wanted) - len(fresh), "added": added,
            "rows_before": old_rows, "rows_after": weight.shape[0], "output_dir": str(output_dir)}
