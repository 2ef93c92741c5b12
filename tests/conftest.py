"""Shared fixtures: tiny MRC data, tiny tokenizers and the optional real KorQuAD half."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO / "data" / "sample"
KORQUAD_HALF = REPO.parent / "shared" / "data" / "korquad" / "KorQuAD_v1.0_dev_half.json"

# A few hand-written paragraphs: short, one longer than a tiny window, answers at start/end,
# a one-syllable answer and one with parentheses.
PARAGRAPHS = [
    ("한강", "한강은 대한민국의 서울을 가로질러 흐르는 강이다. 길이는 약 514킬로미터이며 황해로 흘러든다. "
           "한강 유역에는 예로부터 많은 사람이 모여 살았다. 강 위에는 서른 개가 넘는 다리가 놓여 있다.",
     [("한강은 어느 도시를 가로질러 흐르는가?", "서울"), ("한강의 길이는 약 얼마인가?", "514킬로미터"),
      ("한강 위에 놓인 다리는 몇 개가 넘는가?", "서른 개")]),
    ("훈민정음", "훈민정음은 1443년 세종이 창제한 문자이다. 1446년에 반포되었으며 오늘날 한글이라 부른다. "
             "훈민정음 해례본은 국보(제70호)로 지정되었다.",
     [("훈민정음을 창제한 왕은?", "세종"), ("훈민정음이 반포된 해는?", "1446년"),
      ("훈민정음 해례본의 국보 번호는?", "국보(제70호)")]),
    ("계절", "봄은 한 해의 첫 계절이다. 봄에는 꽃이 피고 날씨가 따뜻해진다. 여름은 덥고 비가 많이 온다. "
           "가을에는 단풍이 들며 겨울에는 눈이 내린다. 가장 추운 계절은 겨울이다.",
     [("한 해의 첫 계절은?", "봄"), ("가장 추운 계절은?", "겨울"), ("가을에 드는 것은?", "단풍")]),
]


def squad_payload(paragraphs=PARAGRAPHS) -> dict:
    data = []
    for a, (title, context, qas) in enumerate(paragraphs):
        items = []
        for q, (question, answer) in enumerate(qas):
            start = context.index(answer)
            items.append({"id": f"t{a}-{q}", "question": question,
                          "answers": [{"text": answer, "answer_start": start}]})
        data.append({"title": title, "paragraphs": [{"context": context, "qas": items}]})
    return {"version": "test", "data": data}


@pytest.fixture
def squad_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_squad.json"
    path.write_text(json.dumps(squad_payload(), ensure_ascii=False), encoding="utf-8")
    return path


def all_texts() -> list[str]:
    texts = []
    for title, context, qas in PARAGRAPHS:
        texts += [title, context] + [q for q, _ in qas]
    return texts


@pytest.fixture(scope="session")
def char_tokenizer_dir(tmp_path_factory) -> Path:
    """One token per character: every answer boundary is reachable."""
    from odqa.reader.tokenizer import build_char_tokenizer

    path = tmp_path_factory.mktemp("char_tok")
    texts = all_texts()
    if (SAMPLE_DIR / "train.json").exists():
        for name in ("train.json", "validation.json"):
            payload = json.loads((SAMPLE_DIR / name).read_text(encoding="utf-8"))
            for article in payload["data"]:
                for p in article["paragraphs"]:
                    texts.append(p["context"])
                    texts += [qa["question"] for qa in p["qas"]]
    build_char_tokenizer(texts, str(path))
    return path


def wordpiece_tokenizer(texts: list[str], vocab_size: int = 300, nfd_lowercase: bool = False):
    """A small WordPiece trained on ``texts``; ``nfd_lowercase`` mimics uncased BERT (Hangul → jamo)."""
    from odqa.reader.tokenizer import train_wordpiece_tokenizer

    return train_wordpiece_tokenizer(texts, vocab_size=vocab_size, nfd_lowercase=nfd_lowercase)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and a busy shared CPU makes extra threads spin."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def korquad_half() -> Path:
    if not KORQUAD_HALF.exists():
        pytest.skip(f"real-data test: {KORQUAD_HALF} is absent (it ships in ../shared beside the repo, as in CI)")
    return KORQUAD_HALF
