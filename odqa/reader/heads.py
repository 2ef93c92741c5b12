"""Span heads: modules that turn the encoder's last hidden state into (start, end) logits.

Every head has the same signature, ``head(hidden, attention_mask) -> (batch, seq, 2)``, so the
reader, its saving and loading, and the int8 reader never depend on which one was chosen. The
heads of the competition code this library replaces are here under their names (``rnn``,
``lstm_cnn``, ``attention``, ``attention_ln``, ``multihead_attention``), with one change on
purpose: padding is masked everywhere (packed LSTMs, zeroed convolution inputs, masked attention
keys), so what sits in padding never changes the logits of real tokens — the original's heads
let padded keys into their attention.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from odqa.errors import ConfigError

CNN_KERNEL_SIZES = (1, 3, 5)
MULTIHEAD_HEADS = 8  # as in the original's multihead_attention head (fewer when hidden size is not divisible)

HEAD_HELP = {
    "linear": "dropout + linear: the classic BERT QA head",
    "lstm_ln": "BiLSTM + LayerNorm",
    "cnn": "convolutions of width 1/3/5, concatenated",
    "rnn": "two BiLSTMs, the end one started from the start one's final state",
    "lstm_cnn": "2-layer BiLSTM, then convolutions of width 1/3/5",
    "attention": "one self-attention block over the encoder output",
    "attention_ln": "self-attention with a residual connection and LayerNorm",
    "multihead_attention": f"{MULTIHEAD_HEADS}-head self-attention",
}
HEADS = tuple(HEAD_HELP)


def _right_padded_lengths(attention_mask: torch.Tensor | None, seq_len: int) -> torch.Tensor | None:
    """Lengths (on CPU, as packing wants) if every row is ones-then-zeros, else None."""
    if attention_mask is None:
        return None
    mask = attention_mask.bool()
    lengths = mask.sum(dim=1)
    positions = torch.arange(seq_len, device=mask.device).unsqueeze(0)
    if not torch.equal(mask, positions < lengths.unsqueeze(1)):
        return None
    return lengths.clamp(min=1).cpu()


def _run_lstm(lstm: nn.LSTM, hidden: torch.Tensor, attention_mask: torch.Tensor | None,
              state: tuple[torch.Tensor, torch.Tensor] | None = None):
    """Run ``lstm`` over the real tokens only (packed) when padding is on the right."""
    lengths = _right_padded_lengths(attention_mask, hidden.size(1))
    if lengths is None:
        return lstm(hidden, state)
    packed = nn.utils.rnn.pack_padded_sequence(hidden, lengths, batch_first=True, enforce_sorted=False)
    out, final = lstm(packed, state)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=hidden.size(1))
    return out, final


def _zero_padding(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    if attention_mask is None:
        return hidden
    return hidden * attention_mask.unsqueeze(-1).to(hidden.dtype)


class LinearHead(nn.Module):
    """Dropout then one linear layer to (start, end): the classic BERT QA head."""

    def __init__(self, hidden_size: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.qa_outputs = nn.Linear(hidden_size, 2)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        return self.qa_outputs(self.dropout(hidden))


class LSTMLayerNormHead(nn.Module):
    """BiLSTM (2 x hidden/2 units, so the width is kept), LayerNorm, dropout, linear.

    Sequences are packed by their attention-mask length when padding is on the right, so the
    backward LSTM starts at the last real token instead of reading padding first.
    """

    def __init__(self, hidden_size: int, dropout: float) -> None:
        super().__init__()
        half = max(hidden_size // 2, 1)
        self.lstm = nn.LSTM(hidden_size, half, batch_first=True, bidirectional=True)
        self.layer_norm = nn.LayerNorm(2 * half)
        self.dropout = nn.Dropout(dropout)
        self.qa_outputs = nn.Linear(2 * half, 2)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        out, _ = _run_lstm(self.lstm, hidden, attention_mask)
        return self.qa_outputs(self.dropout(self.layer_norm(out)))


def convolutions(in_size: int, out_sizes: tuple[int, ...], kernel_sizes: tuple[int, ...]) -> nn.ModuleList:
    """Parallel 1-D convolutions with 'same' padding."""
    return nn.ModuleList(nn.Conv1d(in_size, out, kernel_size=k, padding=k // 2) for out, k in zip(out_sizes, kernel_sizes))


def convolve(convs: nn.ModuleList, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Every convolution over the sequence, concatenated on channels.

    Padding positions are zeroed before convolving so that they cannot leak into the last real
    tokens through the wider kernels.
    """
    x = _zero_padding(hidden, attention_mask).transpose(1, 2)  # (batch, channels, seq) for Conv1d
    return torch.cat([conv(x) for conv in convs], dim=1).transpose(1, 2)


class CNNHead(nn.Module):
    """Convolutions of width 1, 3, 5 (hidden channels each), GELU, dropout, linear."""

    def __init__(self, hidden_size: int, dropout: float, kernel_sizes: tuple[int, ...] = CNN_KERNEL_SIZES) -> None:
        super().__init__()
        self.convs = convolutions(hidden_size, (hidden_size,) * len(kernel_sizes), kernel_sizes)
        self.dropout = nn.Dropout(dropout)
        self.qa_outputs = nn.Linear(hidden_size * len(kernel_sizes), 2)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        return self.qa_outputs(self.dropout(F.gelu(convolve(self.convs, hidden, attention_mask))))


class RNNHead(nn.Module):
    """Start logits from one BiLSTM; end logits from a second BiLSTM that starts from the first's
    final state, so the end pointer is conditioned on what the start pointer read."""

    def __init__(self, hidden_size: int, dropout: float) -> None:
        super().__init__()
        self.start_lstm = nn.LSTM(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.end_lstm = nn.LSTM(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.start_output = nn.Linear(2 * hidden_size, 1)
        self.end_output = nn.Linear(2 * hidden_size, 1)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        start, state = _run_lstm(self.start_lstm, hidden, attention_mask)
        end, _ = _run_lstm(self.end_lstm, hidden, attention_mask, state)
        return torch.cat([self.start_output(self.dropout(start)), self.end_output(self.dropout(end))], dim=-1)


class LSTMCNNHead(nn.Module):
    """2-layer BiLSTM (width kept), then convolutions of width 1/3/5 splitting the hidden size
    between them, ReLU, dropout, linear."""

    def __init__(self, hidden_size: int, dropout: float, kernel_sizes: tuple[int, ...] = CNN_KERNEL_SIZES) -> None:
        super().__init__()
        half = max(hidden_size // 2, 1)
        self.lstm = nn.LSTM(hidden_size, half, num_layers=2, dropout=dropout, batch_first=True, bidirectional=True)
        share, extra = divmod(hidden_size, len(kernel_sizes))
        out_sizes = tuple(max(share + (i < extra), 1) for i in range(len(kernel_sizes)))
        self.convs = convolutions(2 * half, out_sizes, kernel_sizes)
        self.dropout = nn.Dropout(dropout)
        self.qa_outputs = nn.Linear(sum(out_sizes), 2)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        out, _ = _run_lstm(self.lstm, hidden, attention_mask)
        return self.qa_outputs(self.dropout(F.relu(convolve(self.convs, out, attention_mask))))


class SelfAttentionHead(nn.Module):
    """Self-attention over the encoder output (padded keys masked), then GELU or a residual
    LayerNorm, dropout, linear: ``attention`` (1 head), ``attention_ln`` (1 head + residual LN),
    ``multihead_attention`` (8 heads)."""

    def __init__(self, hidden_size: int, dropout: float, num_heads: int = 1, layer_norm: bool = False) -> None:
        super().__init__()
        self.num_heads = max(h for h in range(1, num_heads + 1) if hidden_size % h == 0)
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.layer_norm = nn.LayerNorm(hidden_size) if layer_norm else None
        self.qa_outputs = nn.Linear(hidden_size, 2)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        batch, seq, width = hidden.shape

        def split(x: torch.Tensor) -> torch.Tensor:  # (batch, heads, seq, width / heads)
            return x.view(batch, seq, self.num_heads, width // self.num_heads).transpose(1, 2)

        mask = None
        if attention_mask is not None:  # (batch, 1, 1, seq): every query may look at real keys only
            mask = attention_mask.bool()[:, None, None, :]
        attended = F.scaled_dot_product_attention(split(self.query(hidden)), split(self.key(hidden)),
                                                  split(self.value(hidden)), attn_mask=mask)
        attended = attended.transpose(1, 2).reshape(batch, seq, width)
        if self.layer_norm is not None:
            return self.qa_outputs(self.layer_norm(hidden + self.dropout(attended)))
        return self.qa_outputs(self.dropout(F.gelu(attended)))


def check_head(head: str) -> None:
    if head not in HEADS:
        raise ConfigError(f"unknown reader head {head!r}: choose one of {', '.join(HEADS)}.")


def build_head(head: str, hidden_size: int, dropout: float) -> nn.Module:
    """A freshly initialised head by name (see ``HEAD_HELP``)."""
    check_head(head)
    if head == "attention":
        return SelfAttentionHead(hidden_size, dropout)
    if head == "attention_ln":
        return SelfAttentionHead(hidden_size, dropout, layer_norm=True)
    if head == "multihead_attention":
        return SelfAttentionHead(hidden_size, dropout, num_heads=MULTIHEAD_HEADS)
    return {"linear": LinearHead, "lstm_ln": LSTMLayerNormHead, "cnn": CNNHead, "rnn": RNNHead,
            "lstm_cnn": LSTMCNNHead}[head](hidden_size, dropout)
