#!/usr/bin/env bash
# Prepares .gpu/ (git-ignored) for a run on a lent GPU machine through the `device` tool, which reaches
# no registry and carries at most 64 MiB: this machine's node binary (xz), a pruned node_modules (Dawn's
# linux-x64 binary, uvu; no esbuild/typescript/puppeteer), the built dist/ and .test-build/, and the
# Vulkan/EGL loader packages (.gl, see the device tool's README). Then call device `run` with
#   carry: [".gpu", "dist", ".test-build", ".gl"], command: "bash scripts/gpu-check.sh"
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build --silent
node test/run.mjs --build-only
# Source maps double the carried size and are not needed on the device (64 MiB carry limit).
rm -f dist/*.map .test-build/*.map
rm -rf .gpu && mkdir -p .gpu
xz -T2 -c "$(command -v node)" > .gpu/node.xz
tmp=$(mktemp -d)
mkdir -p "$tmp/node_modules"
# pngjs (metagrad/node); uvu and its dependencies; webgpu with only the linux-x64 binary, and its runtime dependency (debug → ms).
cp -r node_modules/pngjs node_modules/wabt node_modules/uvu node_modules/kleur node_modules/dequal node_modules/diff node_modules/sade node_modules/mri node_modules/debug node_modules/ms node_modules/ffi-rs "$tmp/node_modules/"
mkdir -p "$tmp/node_modules/@yuuang" && cp -r node_modules/@yuuang/ffi-rs-linux-x64-gnu "$tmp/node_modules/@yuuang/"
mkdir -p "$tmp/node_modules/webgpu/dist"
cp -r node_modules/webgpu/package.json node_modules/webgpu/index.js node_modules/webgpu/build "$tmp/node_modules/webgpu/"
cp -r node_modules/webgpu/dist/linux-x64 "$tmp/node_modules/webgpu/dist/"
tar -C "$tmp" -cJf .gpu/node_modules.tar.xz node_modules
rm -rf "$tmp"
if [ ! -d .gl ]; then
  echo "note: no .gl/ (Vulkan loader debs); see /work/.library/device/README.md to download them" >&2
fi
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
du -sh .gpu dist .test-build .gl 2>/dev/null
