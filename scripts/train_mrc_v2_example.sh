#!/usr/bin/env bash
# Train a reader with the options competition teams use: a custom head, staged freezing,
# step-wise evaluation with EM-gated checkpoints. Runs offline on 2 CPU cores in a few minutes
# with the offline all-MiniLM-L6-v2 (an ENGLISH model: weak on Korean, it demonstrates the system).
# Trains on a slice of KorQuAD when ../shared is present (to stay within minutes), else on
# data/sample/train.json; evaluates on data/sample/validation.json (questions it never trained on).
#
# Encoder dropout is off (--attention_dropout 0 --hidden_dropout 0): on CPU that makes each step ~3x
# faster. For a real Korean reader on a GPU, change --model to klue/roberta-large, drop the
# --max_*_samples limits and the two dropout options.
# TPU / multi-GPU: `accelerate launch train_mrc_v2.py <same options>`.
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
  --run_name minilm_lstm_example \
  --description "example: BiLSTM+LayerNorm head, embeddings frozen for half an epoch" \
  --output_dir models/example_reader \
  --model minilm \
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
  --label_smoothing_factor 0.05 \
  --seed 42 \
  "$@"
