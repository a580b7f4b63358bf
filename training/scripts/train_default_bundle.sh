#!/usr/bin/env bash
# Reproduce the shipped default bundle (src/emotion_perception/models/default) and its metrics,
# uninterrupted version of what MODEL_CARD.md records.  Run from the repo root after
# `source scripts/env.sh`:  bash training/scripts/train_default_bundle.sh [DATA_ROOT]
# CPU only; ~4 h on 2 idle cores.  Everything goes to training/runs/ (git-ignored).
set -euo pipefail
DATA="$(realpath "${1:-${EMOTION_DATA:-../shared/data}}")"
ROOT="$(pwd)"
cd training
R=runs
N="nice -n 10"
C="--data $DATA --threads 1 --quiet"

# 1. vision ensemble: FER2013 train, 10 % stratified holdout (seed 0) for early stopping/selection;
#    member 1 (stride-2 stem, widths 32-256) by a warm-started chain, member 2 (stride-1 stem,
#    widths 16-128) from scratch
$N emotion-train vision $C --epochs 14 --patience 8 --optimizer adamw --lr 0.002 --weight-decay 0.01 --batch-size 128 --out $R/vision
$N emotion-train vision $C --init-vision $R/vision/best.pt --epochs 8 --patience 8 --optimizer adamw --lr 0.0005 --weight-decay 0.01 --batch-size 128 --out $R/vision_ft
$N emotion-train vision $C --init-vision $R/vision_ft/best.pt --epochs 8 --patience 8 --optimizer adamw --lr 0.0003 --weight-decay 0.01 --batch-size 128 --balance-power 0.75 --out $R/vision_ft2
$N emotion-train vision $C --init-vision $R/vision_ft2/best.pt --epochs 55 --patience 100 --optimizer adamw --lr 0.0015 --weight-decay 0.01 --batch-size 128 --balance-power 0.75 --out $R/vision_long
$N emotion-train vision $C --seed 2 --holdout-seed 0 --vision-stem-stride 1 --vision-widths 16,32,64,128 --epochs 60 --patience 200 --optimizer adamw --lr 0.002 --weight-decay 0.05 --batch-size 128 --balance-power 0.75 --label-smoothing 0.1 --out $R/vision_s1
V=$R/vision_long/best.pt,$R/vision_s1/best.pt
# 2. vocal encoder on all 8 EmoDB speakers, per-speaker log-mel normalisation, fixed 25 epochs
VOC="--vocal-normalisation speaker --epochs 25 --optimizer adamw --lr 0.003 --weight-decay 0.01 --batch-size 64 --balance-power 1.0 --vocal-widths 12,24,48,96"
$N emotion-train vocal $C $VOC --out $R/vocal_spk
# 3. leave-speakers-out CV with the same recipe (speech metric)
$N emotion-train vocal $C $VOC --cv --cv-folds 4 --out $R/vocal_cv_spk_s0
# 4. fusion head on pseudo-pairs (encoders frozen), fixed 12 epochs
FUS="--face-noise 0.1 --voice-noise 0.2 --epochs 12 --patience 100 --steps-per-epoch 100 --optimizer adamw --lr 0.003 --weight-decay 0.01 --batch-size 256"
$N emotion-train fusion $C $FUS --init-vision $V --init-vocal $R/vocal_spk/last.pt --out $R/fusion_v4
# 5. export the shipped bundle
emotion-export --vision $V --vocal $R/vocal_spk/last.pt --fusion $R/fusion_v4/last.pt \
  --out "$ROOT/src/emotion_perception/models/default" --version 0.4.0
# 6. faces on the unseen FER2013 validation split
emotion-eval faces --plot $R/faces_cm.png "$DATA/fer2013/validation" | tee $R/eval_faces.json
# 7. speech: each CV fold's encoder, exported and scored on its held-out speakers (each speaker
#    calibrated on its own unlabelled files; add --calibration online or none for the other scorings)
for i in 0 1 2 3; do
  spk=$(python3 -c "import json;print(' '.join(json.load(open('$R/vocal_cv_spk_s0/cv_result.json'))['folds'][$i]['test_speakers']))")
  mkdir -p $R/emodb_fold$i/wav
  for s in $spk; do ln -sf "$DATA"/emodb/wav/${s}*.wav $R/emodb_fold$i/wav/; done
  emotion-export --vision $V --vocal $R/vocal_cv_spk_s0/fold$i/last.pt --fusion $R/fusion_v4/last.pt --out $R/bundle_cv$i
  emotion-eval speech --bundle $R/bundle_cv$i $R/emodb_fold$i | tee $R/eval_speech_fold$i.json
done
# 8. fused pseudo-pairs on unseen data: dev bundle whose vocal encoder and fusion head never saw
#    speakers 10 and 15 (CV fold 3)
$N emotion-train fusion $C $FUS --init-vision $V --init-vocal $R/vocal_cv_spk_s0/fold3/last.pt --val-speakers 10,15 --out $R/fusion_dev5
emotion-export --vision $V --vocal $R/vocal_cv_spk_s0/fold3/last.pt --fusion $R/fusion_dev5/last.pt --out $R/bundle_dev5
emotion-eval fused --bundle $R/bundle_dev5 --faces "$DATA/fer2013/validation" --speech $R/emodb_fold3 --steps 4 --sequences 2000 --seed 0 | tee $R/eval_fused_dev5.json
