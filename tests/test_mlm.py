"""Domain-adaptive MLM on tiny models: whole-word groups for WordPiece and SentencePiece tokenizers, whole
units masked together, a tied head built for a bare encoder, deterministic evaluation masking, and a
short run that lowers the loss and saves an encoder the reader loads."""
from __future__ import annotations

import json
import re

import numpy as np

import pytest
import torch

from odqa.mlm.data import chunk_texts
from odqa.mlm.masking import IGNORE_INDEX, fixed_masking, group_tokens, mask_whole_words
from tests.helpers_models import KOREAN_SENTENCES, make_tokenizer, save_tiny_bert

TEXTS = ["세종은 1443년에 훈민정음을 창제하였다.", "경복궁은 조선 왕조의 법궁이다.", *KOREAN_SENTENCES]


def sentencepiece_tokenizer():
    """A ▁-style Unigram tokenizer (as XLM-R / e5-small), trained with `tokenizers`."""
    from tokenizers import SentencePieceUnigramTokenizer
    from transformers import PreTrainedTokenizerFast

    sp = SentencePieceUnigramTokenizer()
    sp.train_from_iterator(TEXTS * 5, vocab_size=120, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                           unk_token="<unk>")
    return PreTrainedTokenizerFast(tokenizer_object=sp._tokenizer, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", unk_token="<unk>", mask_token="<mask>", cls_token="<s>",
                                   sep_token="</s>")


@pytest.mark.parametrize("style", ["wordpiece", "sentencepiece"])
def test_every_piece_of_an_eojeol_shares_one_group(style):
    tokenizer = make_tokenizer() if style == "wordpiece" else sentencepiece_tokenizer()
    for text in TEXTS:
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        groups = group_tokens(text, encoded["offset_mapping"], "word")
        eojeol = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
        assert len(set(groups)) == len(eojeol) <= len(groups)  # several pieces per word, one group per word
        for (start, end), group in zip(encoded["offset_mapping"], groups):
            if end > start:
                w_start, w_end = eojeol[group]
                assert w_start <= max(start, w_start) and end <= w_end  # the piece lies inside its word


def test_morpheme_mode_masks_particles_apart(char_tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(char_tokenizer_dir))
    text = "세종이 만들었다"
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    assert group_tokens(text, offsets, "word")[:3] == [0, 0, 0]
    morphemes = group_tokens(text, offsets, "morpheme")
    assert morphemes[0] == morphemes[1] != morphemes[2]  # 세종 | 이


def test_whole_units_are_masked_together_80_10_10():
    generator = torch.Generator().manual_seed(0)
    words = torch.tensor([[-1] + [i // 3 for i in range(300)] + [-1]])  # 100 words of 3 tokens
    ids = torch.randint(10, 1000, words.shape)
    masked, labels = mask_whole_words(ids, words, mask_token_id=4, vocab_size=1000, probability=0.3,
                                      generator=generator)
    chosen = labels[0] != IGNORE_INDEX
    assert not chosen[0] and not chosen[-1]  # special tokens never
    per_word = chosen[1:-1].view(100, 3)
    assert torch.all(per_word.all(1) | ~per_word.any(1))  # all three pieces or none
    assert 15 <= int(per_word.all(1).sum()) <= 45
    assert torch.equal(labels[0][chosen], ids[0][chosen])
    assert (masked[0][chosen] == 4).float().mean() > 0.6  # most selected words become the mask token


def test_evaluation_masking_is_identical_across_runs():
    tokenizer = make_tokenizer()
    chunks = chunk_texts(TEXTS * 3, tokenizer, chunk_size=32)
    assert all(len(c["input_ids"]) <= 32 for c in chunks) and len(chunks) > 2
    first, second = fixed_masking(chunks, tokenizer, seed=3), fixed_masking(chunks, tokenizer, seed=3)
    assert first == second and first != fixed_masking(chunks, tokenizer, seed=4)


def test_a_bare_encoder_gets_a_tied_head_and_a_short_run_lowers_the_loss(tmp_path):
    from odqa.mlm.model import head_is_tied, load_mlm_model
    from odqa.mlm.train import main
    from odqa.reader.modeling import get_model

    encoder = save_tiny_bert(tmp_path / "encoder")
    model = load_mlm_model(str(encoder))
    assert head_is_tied(model)
    corpus = tmp_path / "texts.txt"
    corpus.write_text("\n".join(TEXTS * 4), encoding="utf-8")
    out = tmp_path / "adapted"
    assert main(["--model", str(encoder), "--corpus", str(corpus), "--output_dir", str(out), "--chunk_size", "32",
                 "--eval_fraction", "0.2", "--num_train_epochs", "8", "--learning_rate", "3e-3",
                 "--per_device_train_batch_size", "4", "--whole_word_mask", "word", "--report_to", "none",
                 "--save_strategy", "no"]) == 0
    results = json.loads((out / "mlm_results.json").read_text(encoding="utf-8"))
    assert results["perplexity_after"] < results["perplexity_before"]
    reader = get_model(str(out), head="linear")  # the saved folder is an encoder the reader takes as is
    assert reader.backbone.config.vocab_size == model.config.vocab_size


@pytest.mark.parametrize("kind", ["wordpiece", "unigram"])
def test_a_morpheme_aware_vocabulary_splits_particles_and_endings_from_raw_text(kind, tmp_path):
    """Learned on Kiwi-segmented text, the vocabulary reads raw text with a piece boundary at every morpheme
    boundary (창제 | 하 | 였 | 다); the raw vocabulary glues some (창제 | 하였 | 다)."""
    from transformers import AutoTokenizer

    from odqa.mlm.data import load_texts
    from odqa.mlm.vocab import build_tokenizer, segment_morphemes
    from tests.conftest import SAMPLE_DIR

    texts = load_texts([SAMPLE_DIR / "train.json", SAMPLE_DIR / "extra_passages.jsonl"])
    build_tokenizer(texts, kind, vocab_size=2000, morpheme_aware=True, output_dir=tmp_path / "tok")
    aware = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    raw = build_tokenizer(texts, kind, vocab_size=2000)

    def cuts(pieces: list[str]) -> set[int]:
        out, at = set(), 0
        for piece in pieces:
            at += len(piece.removeprefix("##").removeprefix("▁"))
            out.add(at)
        return out

    def morpheme_cuts(word: str) -> set[int]:
        return cuts(segment_morphemes([word])[0][0].split())

    words = ["세종이", "창제하였다", "훈민정음을"]
    assert all(morpheme_cuts(w) <= cuts(aware.tokenize(w)) for w in words)
    assert not all(morpheme_cuts(w) <= cuts(raw.tokenize(w)) for w in words)
    assert aware.mask_token is not None and aware("세종이")["input_ids"][0] == aware.cls_token_id


def test_vocabulary_expansion_keeps_old_rows_and_averages_the_pieces(tmp_path, char_tokenizer_dir):
    from transformers import AutoModel, AutoTokenizer

    from odqa.mlm.cli import expand_main

    before_tok = AutoTokenizer.from_pretrained(str(char_tokenizer_dir))  # one token per character
    encoder = save_tiny_bert(tmp_path / "encoder", vocab_size=len(before_tok), with_tokenizer=False)
    before_tok.save_pretrained(str(encoder))
    before = AutoModel.from_pretrained(str(encoder)).get_input_embeddings().weight.detach().clone()
    word = "훈민정음"
    old_pieces = before_tok(word, add_special_tokens=False)["input_ids"]
    assert len(old_pieces) == 4 and before_tok.unk_token_id not in old_pieces
    out = tmp_path / "expanded"
    assert expand_main(["--model", str(encoder), "--tokens", word, before_tok.convert_ids_to_tokens(old_pieces[0]),
                        "--output_dir", str(out)]) == 0
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    after = AutoModel.from_pretrained(str(out)).get_input_embeddings().weight.detach()
    assert after.shape[0] == before.shape[0] + 1 == len(tokenizer)  # the known piece was not added again
    assert torch.equal(after[:before.shape[0]], before)  # old rows unchanged
    assert torch.allclose(after[tokenizer.convert_tokens_to_ids(word)], before[old_pieces].mean(0))
    assert tokenizer.tokenize(f"{word} 왕")[0] == word


@pytest.mark.parametrize("warmup,encoder_moves", [(2, False), (1, True)])
def test_head_warmup_keeps_the_encoder_still_for_its_steps(tmp_path, warmup, encoder_moves):
    """--head_warmup_steps N: for N steps only the MLM head learns; after them the encoder does too."""
    from safetensors.numpy import load_file

    from odqa.mlm.train import main

    encoder = save_tiny_bert(tmp_path / "encoder")
    corpus = tmp_path / "texts.txt"
    corpus.write_text("\n".join(TEXTS * 4), encoding="utf-8")
    out = tmp_path / "adapted"
    assert main(["--model", str(encoder), "--corpus", str(corpus), "--output_dir", str(out), "--chunk_size", "32",
                 "--eval_fraction", "0.2", "--max_steps", "2", "--learning_rate", "1e-2", "--warmup_ratio", "0",
                 "--mlm_probability", "0.5",
                 "--per_device_train_batch_size", "4", "--head_warmup_steps", str(warmup), "--report_to", "none",
                 "--save_strategy", "no"]) == 0
    before, after = load_file(str(encoder / "model.safetensors")), load_file(str(out / "model.safetensors"))
    moved = [k for k in after if not np.array_equal(before[k], after[k])]
    assert bool(moved) is encoder_moves
