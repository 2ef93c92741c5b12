"""Tiny models and tokenizers built on the fly, so reader tests run offline in seconds."""
from __future__ import annotations

from pathlib import Path

import torch

KOREAN_SENTENCES = [
    "대한민국의 수도는 서울이다.",
    "세종대왕은 훈민정음을 창제하였다.",
    "이순신 장군은 임진왜란 때 활약하였다.",
    "한강은 서울을 가로질러 흐른다.",
    "질문에 대한 답을 문서에서 찾는다.",
    "서울의 인구는 약 천만 명이다.",
]

TINY_BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 max_position_embeddings=64)


def make_tokenizer(vocab_size: int = 200):
    """A WordPiece tokenizer trained on a few Korean sentences, wrapped as a BertTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(KOREAN_SENTENCES, trainers.WordPieceTrainer(vocab_size=vocab_size,
                                                                         special_tokens=special))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    tok.decoder = decoders.WordPiece()
    return BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]")


def save_tiny_bert(path: Path, vocab_size: int = 200, seed: int = 0, with_tokenizer: bool = True) -> Path:
    """A randomly initialised 2-layer BERT encoder (``BertModel``) saved like a hub checkpoint."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    model = BertModel(BertConfig(vocab_size=vocab_size, **TINY_BERT))
    model.save_pretrained(path)
    if with_tokenizer:
        make_tokenizer(vocab_size).save_pretrained(path)
    return Path(path)


def save_tiny_roberta(path: Path, vocab_size: int = 200, seed: int = 0) -> Path:
    from transformers import RobertaConfig, RobertaModel

    torch.manual_seed(seed)
    config = RobertaConfig(vocab_size=vocab_size, type_vocab_size=1, pad_token_id=1, **{
        **TINY_BERT, "max_position_embeddings": 70})
    RobertaModel(config).save_pretrained(path)
    return Path(path)


def random_batch(batch: int = 3, seq: int = 16, vocab_size: int = 200, seed: int = 0,
                 pad_last: int = 4) -> dict[str, torch.Tensor]:
    """Random ids with right padding on the last row, plus in-range span labels."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, vocab_size, (batch, seq), generator=g)
    attention_mask = torch.ones(batch, seq, dtype=torch.long)
    if pad_last:
        attention_mask[-1, -pad_last:] = 0
        input_ids[-1, -pad_last:] = 0
    token_type_ids = torch.zeros(batch, seq, dtype=torch.long)
    token_type_ids[:, seq // 2:] = 1
    start = torch.randint(1, seq // 2, (batch,), generator=g)
    end = start + torch.randint(0, 3, (batch,), generator=g)
    return dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                start_positions=start, end_positions=end)
