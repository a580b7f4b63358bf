#!/usr/bin/env bash
# EmoDB leave-two-speakers-out figures of the shipped vocal recipe (seven labels, EmoDB + RAVDESS
# actors 01-06, one room-noise copy per clip): for each fold, train the recipe without the
# fold's two EmoDB speakers, put the encoder into a copy of the shipped bundle and score those
# speakers' files with `emotion-eval speech` (offline, online and no calibration; per_corpus.emodb
# .own_labels is the six-label figure). Then pools the folds' recalls per class. The new encoder
# replaces the shipped vocal graph's decision members and its voiceprint member (both heard every
# EmoDB speaker), so the figure is the one CNN's; `emotion-train voiceprint --bundle` on a fold's
# bundle, without the fold's speakers, adds the voiceprint member back (model EXPERIMENTS.md).
#   bash training/scripts/cv_vocal_emodb.sh [DATA_ROOT] [FOLDS...]    # default folds: 03_12 08_13
# About 80 min per fold on one thread of the 2-core VM (two folds run side by side); the
# four folds of the 0.5.0 CV are 03_12 08_13 09_14 10_15.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh >/dev/null
DATA=${1:-${EMOTION_DATA:-../shared/data}}
shift || true
if [ $# -gt 0 ]; then FOLDS=("$@"); else FOLDS=(03_12 08_13); fi
R=training/runs/emodb_cv
ALL="03 08 09 10 12 13 14 15"
mkdir -p "$R"
fold() {  # A_B
  local a=${1%_*} b=${1#*_} tr="" s
  for s in $ALL; do [[ $s == "$a" || $s == "$b" ]] || tr="$tr,emodb:$s"; done
  tr="${tr#,},ravdess:01,ravdess:02,ravdess:03,ravdess:04,ravdess:05,ravdess:06"
  emotion-train vocal --data "$DATA" --threads 1 --quiet --speech emodb,ravdess \
    --vocal-normalisation speaker --epochs 25 --patience 1000 --optimizer adamw --lr 0.003 \
    --weight-decay 0.01 --batch-size 64 --balance-power 1.0 --vocal-widths 12,24,48,96 \
    --train-speakers "$tr" --val-speakers "emodb:$a,emodb:$b" --seed 0 --noise-copies 1 \
    --noise-dbfs -70 -35 --out "$R/fold_$1" > "$R/fold_$1.log" 2>&1
  emotion-export --from-bundle src/emotion_runtime/models/default --vocal "$R/fold_$1/last.pt" \
    --out "$R/bundle_$1" --version "cv-$1"
  local wav="$R/wav_$1"
  mkdir -p "$wav"
  ln -sf "$(realpath "$DATA")"/emodb/wav/"$a"*.wav "$(realpath "$DATA")"/emodb/wav/"$b"*.wav "$wav/"
  for cal in offline online; do
    emotion-eval speech "$wav" --bundle "$R/bundle_$1" --calibration $cal > "$R/eval_$1_$cal.json"
  done
}
pids=()
for f in "${FOLDS[@]}"; do fold "$f" & pids+=($!); done
for pid in "${pids[@]}"; do wait "$pid"; done   # a failed fold stops the script (set -e)
python - "$R" "${FOLDS[@]}" <<'PY'
import json, sys
import numpy as np
r, folds = sys.argv[1], sys.argv[2:]
for cal in ('offline', 'online', 'none'):
    hit, n = {}, {}
    for f in folds:
        j = json.loads(open(f'{r}/eval_{f}_{"online" if cal == "none" else cal}.json').read().splitlines()[-1])
        block = j['no_calibration'] if cal == 'none' else j
        own = block['per_corpus']['emodb']['own_labels']
        support = np.array(j['confusion']).sum(1)
        for i, lab in enumerate(j['labels']):
            if support[i]:
                hit[lab] = hit.get(lab, 0) + own['per_class_recall'][lab] * support[i]
                n[lab] = n.get(lab, 0) + support[i]
    recall = {lab: hit[lab] / n[lab] for lab in n}
    print(f'{cal:8s} EmoDB six-label UAR pooled over {" ".join(folds)}: '
          f'{np.mean(list(recall.values())):.3f}  ' +
          ' '.join(f'{k} {v:.2f}' for k, v in recall.items()))
PY
