"""Loading the reader's tokenizer by name, alias or folder, with a clear error."""
from __future__ import annotations

from odqa.errors import ConfigError
from odqa.offline import missing_model_error, resolve_model_name


def load_tokenizer(name_or_path: str):
    """A fast tokenizer for ``name_or_path`` (offline aliases: ``e5-small``, ``minilm``; see :mod:`odqa.offline`)."""
    from transformers import AutoTokenizer

    resolved = resolve_model_name(name_or_path)
    error = missing_model_error(resolved, "model or tokenizer")
    if error is not None:
        raise error
    try:
        return AutoTokenizer.from_pretrained(resolved, use_fast=True)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot load a tokenizer from {name_or_path!r} ({err.__class__.__name__}: "
                          f"{str(err).splitlines()[0]}). Offline, pass a local folder, `e5-small` or `minilm`.") from None


def build_char_tokenizer(texts, output_dir: str | None = None):
    """A tokenizer with one token per character (whitespace dropped), trained on ``texts``.

    Its token boundaries fall on every character, so every answer span is reachable: the
    reference point for ``odqa check-data`` (any loss left is windowing, not tokenization).
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = sorted({ch for text in texts for ch in text if not ch.isspace()})
    vocab = {tok: i for i, tok in enumerate(specials + chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex("."), behavior="isolated")])
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    # the generic class keeps this pipeline on reload (BertTokenizerFast would rebuild a WordPiece one)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]", model_max_length=512)
    if output_dir is not None:
        fast.save_pretrained(output_dir)
    return fast


def train_wordpiece_tokenizer(texts, vocab_size: int = 32000, nfd_lowercase: bool = False,
                              output_dir: str | None = None):
    """A BERT-style WordPiece trained on ``texts`` with `tokenizers`.

    ``nfd_lowercase=True`` mimics uncased BERT (lowercase + strip accents, so Hangul becomes
    jamo). Trained on raw Korean, such a vocabulary glues particles to words (혐의로 is one
    token); trained on morpheme-segmented text, it mostly keeps them apart.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=nfd_lowercase, strip_accents=nfd_lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=512)
    if output_dir is not None:
        fast.save_pretrained(output_dir)
    return fast
