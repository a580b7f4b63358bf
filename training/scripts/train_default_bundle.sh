#!/usr/bin/env bash
# Reproduce the shipped default bundle (src/emotion_perception/models/default) and its metrics.
# Usage: bash training/scripts/train_default_bundle.sh [DATA_ROOT]   (run from the repo root,
# after `source scripts/env.sh`).  CPU only; ~1-2 h on 2 cores.  Writes to training/runs/.
set -euo pipefail
DATA="${1:-${EMOTION_DATA:-../shared/data}}"
RUNS=training/runs
BUNDLE=src/emotion_perception/models/default
N="nice -n 10"

# 1. vision encoder: FER2013 train (6 labels), 10 % stratified holdout for early stopping;
#    FER2013 validation stays unseen for the reported test.
$N emotion-train vision --data "$DATA" --epochs 14 --patience 8 --optimizer adamw --lr 0.002 \
  --weight-decay 0.01 --batch-size 128 --threads 1 --out $RUNS/vision --quiet
# 2. vocal encoder: all 8 EmoDB speakers, fixed 25 epochs (recipe fixed by nothing but defaults:
#    no speaker of the CV below was used to tune it).
$N emotion-train vocal --data "$DATA" --epochs 25 --optimizer adamw --lr 0.003 --weight-decay 0.01 \
  --batch-size 64 --balance-power 1.0 --vocal-widths 12,24,48,96 --threads 1 --out $RUNS/vocal --quiet
# 3. speech metric: leave-speakers-out CV (4 folds of 2 speakers), same recipe, last epoch scored.
$N emotion-train vocal --data "$DATA" --cv --cv-folds 4 --epochs 25 --optimizer adamw --lr 0.003 \
  --weight-decay 0.01 --batch-size 64 --balance-power 1.0 --vocal-widths 12,24,48,96 --threads 1 \
  --out $RUNS/vocal_cv --quiet
# 4. fusion head on pseudo-pairs (encoders frozen), fixed epochs.
$N emotion-train fusion --data "$DATA" --init-vision $RUNS/vision/best.pt \
  --init-vocal $RUNS/vocal/last.pt --epochs 12 --steps-per-epoch 100 --optimizer adamw \
  --lr 0.003 --weight-decay 0.01 --batch-size 256 --threads 1 --out $RUNS/fusion --quiet
# 5. export the shipped bundle.
emotion-export --vision $RUNS/vision/best.pt --vocal $RUNS/vocal/last.pt \
  --fusion $RUNS/fusion/last.pt --out $BUNDLE --version 0.1.0 \
  --training-json $RUNS/training_info.json --metrics-json $RUNS/metrics.json
# 6. held-out evaluation (never seen in training): faces on FER2013 validation.
emotion-eval faces --bundle $BUNDLE --plot $RUNS/faces_cm.png "$DATA/fer2013/validation"
# 7. fused pseudo-pairs on unseen data: a dev bundle whose vocal encoder is the CV fold that
#    never saw speakers 10 and 15, with a fusion head trained without them.
$N emotion-train fusion --data "$DATA" --init-vision $RUNS/vision/best.pt \
  --init-vocal $RUNS/vocal_cv/fold3/last.pt --val-speakers 10,15 --epochs 12 \
  --steps-per-epoch 100 --optimizer adamw --lr 0.003 --weight-decay 0.01 --batch-size 256 \
  --threads 1 --out $RUNS/fusion_dev --quiet
emotion-export --vision $RUNS/vision/best.pt --vocal $RUNS/vocal_cv/fold3/last.pt \
  --fusion $RUNS/fusion_dev/last.pt --out $RUNS/bundle_dev
mkdir -p $RUNS/emodb_10_15/wav && ln -sf "$(realpath "$DATA")"/emodb/wav/{10,15}*.wav $RUNS/emodb_10_15/wav/
emotion-eval speech --bundle $RUNS/bundle_dev $RUNS/emodb_10_15
emotion-eval fused --bundle $RUNS/bundle_dev --faces "$DATA/fer2013/validation" \
  --speech $RUNS/emodb_10_15 --steps 4 --sequences 2000 --seed 0
