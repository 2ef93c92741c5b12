"""The reader's forward loop: length batching and logits independent of how windows are batched."""
from __future__ import annotations

import numpy as np
import pytest

from odqa.reader.inference import length_batches


def test_length_batches_cover_every_window_once_longest_first_within_the_batch_size():
    lengths = np.random.default_rng(0).integers(20, 385, size=500)
    batches = length_batches(lengths, batch_size=16)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(500))
    assert all(1 <= len(b) <= 16 for b in batches)
    assert list(lengths[flat]) == sorted(lengths, reverse=True)
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert padded <= 1.05 * lengths.sum()  # near-equal lengths share batches: little padding


def test_length_batches_cut_where_padding_would_be_wasted_but_not_for_a_few_tokens():
    assert [b.tolist() for b in length_batches([380, 370, 200, 190, 60], batch_size=32)] == [[0, 1], [2, 3], [4]]
    assert [b.tolist() for b in length_batches([300, 298, 297, 290], batch_size=32)] == [[0, 1, 2, 3]]
    assert sorted(len(b) for b in length_batches([100] * 5, batch_size=2)) == [1, 2, 2]
    assert length_batches([], batch_size=8) == []


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_logits_do_not_depend_on_the_batching(tmp_path, batch_size):
    """Each window's logits equal those of the window read alone, whatever batches it landed in."""
    import torch

    from odqa.reader.inference import forward_windows
    from odqa.reader.modeling import get_model
    from odqa.reader.tokenizer import load_tokenizer
    from tests.helpers_models import save_tiny_bert

    encoder = save_tiny_bert(tmp_path / "encoder", vocab_size=200)
    tokenizer, model = load_tokenizer(str(encoder)), get_model(str(encoder)).eval()
    rng = np.random.default_rng(1)
    ids = [[2, *rng.integers(5, 200, size=int(n)).tolist(), 3] for n in rng.integers(3, 60, size=11)]
    features = {"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids],
                "token_type_ids": [[0] * len(x) for x in ids]}
    starts, ends = forward_windows(model, tokenizer, features, batch_size)
    with torch.inference_mode():
        for i, x in enumerate(ids):
            alone = model(input_ids=torch.tensor([x]), attention_mask=torch.ones(1, len(x), dtype=torch.long),
                          token_type_ids=torch.zeros(1, len(x), dtype=torch.long))
            assert starts[i].shape == (len(x),)
            np.testing.assert_allclose(starts[i], alone.start_logits[0].numpy(), atol=1e-4)
            np.testing.assert_allclose(ends[i], alone.end_logits[0].numpy(), atol=1e-4)
