#!/usr/bin/env bash
# The README's sinusoid table: MAML (order 2) and Meta-SGD on MAML's sinusoid regression at K = 5, 10, 20
# with the paper's settings (1-40-40-1, α = 0.01, Adam β = 0.001, 25 tasks per batch, one inner step,
# 70,000 iterations), each evaluated on 600 held-out waves after 0 … 10 steps against the pretrained
# (joint, 70,000 iterations), from-scratch and oracle rows. Two runs at a time (one per algorithm).
# Usage: bash scripts/sinusoid-table.sh OUT_DIR [ITERATIONS]
set -euo pipefail
out=${1:?usage: scripts/sinusoid-table.sh OUT_DIR [ITERATIONS]}
iterations=${2:-70000}
cd "$(dirname "$0")/.."
mkdir -p "$out"
run() {
  local algo=$1 k=$2 dir="$out/$1-k$2"
  node bin/metagrad.js train --source sinusoid --shots "$k" --algo "$algo" --order 2 --inner-lr 0.01 --outer-lr 0.001 --optimizer adam \
    --tasks 25 --iterations "$iterations" --eval-every 0 --attack none --backend cpu --quiet --force --out "$dir" > "$dir.train.log" 2>&1
  node bin/metagrad.js eval --checkpoint "$dir/checkpoint.json" --eval-tasks 600 --attack none --backend cpu > "$dir.eval.log" 2>&1
}
for algo in maml meta-sgd; do
  ( for k in 5 10 20; do run "$algo" "$k"; done ) &
done
wait
grep -h "^| \|^done" "$out"/*.log
