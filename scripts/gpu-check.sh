#!/usr/bin/env bash
# Runs on the lent GPU machine (prepared by scripts/gpu-pack.sh): the WebGPU tests on the real adapter,
# then the benchmark with its PyTorch peers on CUDA. Everything worth keeping goes to $OUT.
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done 2>/dev/null; ldconfig
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
command -v node >/dev/null || { xz -d -c .gpu/node.xz > /usr/local/bin/node && chmod +x /usr/local/bin/node; }
[ -d node_modules ] || tar -xJf .gpu/node_modules.tar.xz
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
{ node --version; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; node dist/cli.js info; } 2>&1 | tee "$OUT/info.txt"
# Every test file but the browser one (no chromium there), on the hardware adapter (GPU_CHECK_TESTS=0: none).
if [ "${GPU_CHECK_TESTS:-1}" != 0 ]; then
  node test/run.mjs kernels,algorithms,math,learner,tasks,chunks,cli,mlp,omniglot,reliability,device-option,divergence,conv,pool-kernel,net-,sinusoid,cpu-simd --no-build 2>&1 | tail -40 | tee "$OUT/tests.txt"
fi
# The MLP rows' PyTorch peers on CUDA, checked on their own first (batched vs loop, order 2 vs 1, finite
# differences; seconds), then the benchmark with every peer on CUDA. BENCH_ONLY=mlp: the MLP rows alone;
# BENCH_ROW_CAP bounds each MLP measurement (the CPU backend's T=1024 order 2 is the slow one there).
PYTHONUNBUFFERED=1 python3 bench/peers/mlp_peers.py --selftest --device cuda 2>&1 | tee "$OUT/mlp-peers-selftest.txt"
PYTHONUNBUFFERED=1 python3 bench/peers/net_peers.py --selftest --device cuda 2>&1 | tee "$OUT/net-peers-selftest.txt"
BENCH_TORCH_DEVICE=${BENCH_TORCH_DEVICE:-cuda} BENCH_ROW_CAP=${BENCH_ROW_CAP:-20} BENCH_SECONDS=${BENCH_SECONDS:-1} \
  node dist/bench.js 2>&1 | grep -v '^Warning' | tee "$OUT/bench.txt"
cp bench/results/*.json "$OUT/" 2>/dev/null | true
