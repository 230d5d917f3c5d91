#!/usr/bin/env bash
# The one prepared check for a machine with a real GPU (issue 8): fused apply of the `1b` demo preset
# on the CPU and on the GPU, timed in the same run, and the count of output elements that differ;
# then (issue 15) `extract --rank $LORA_RANK` (default 16; LORA_RANK=0 skips it) of the same pair
# on the CPU and with the GEMMs on the GPU, timed, with both adapters' captured energy and
# relative error (the 1 % rule holds for both; the factors differ by float32 rounding). Every
# `--backend gpu` run first passes the GPU self-test (combine, diff and the GEMMs against the
# JavaScript reference), or falls back to the CPU with a warning — the result line names the backend.
# Needs a built checkout (`npm ci` ran: dist/ and node_modules/webgpu present) and Node ≥ 20.19.
# Writes gpu-check.json (and the log) to $OUT when set, else to bench-results/.
#   bash scripts/gpu-hardware-check.sh            # generates the 1b trio once (~2.2 GB per model)
#   PRESET=small bash scripts/gpu-hardware-check.sh  # a quick try
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RESULTS="${OUT:-$ROOT/bench-results}"
DEMO="${GPU_CHECK_DIR:-$ROOT/bench-results/demo}"
P="${PRESET:-1b}"   # PRESET=small for a quick try
mkdir -p "$RESULTS" "$DEMO"
command -v node >/dev/null || { echo "node is not installed on this machine" >&2; exit 2; }
node --version
[ -f dist/cli.js ] || node scripts/build.mjs
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true

# The trio (reused when present): `demo` also extracts, applies and verifies on the CPU.
[ -f "$DEMO/.chatvec-demo-$P.json" ] || node dist/cli.js demo --dir "$DEMO" --preset "$P" --quiet
cat "$DEMO/.chatvec-demo-$P.json"

run() { # backend, output → milliseconds on stdout
  local t0 t1
  t0=$(date +%s%N)
  node dist/cli.js apply --target "$DEMO/$P-cp" --base "$DEMO/$P-base" --chat "$DEMO/$P-chat" --skip-embed \
    --out "$2" --overwrite --backend "$1" 1>&2
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}
cpu=(); gpu=()
for i in 1 2 3; do
  cpu+=("$(run cpu "$DEMO/out-cpu")")
  gpu+=("$(run gpu "$DEMO/out-gpu")")
done
P="$P" node - "$DEMO/out-cpu" "$DEMO/out-gpu" "$RESULTS/gpu-check.json" "${cpu[*]}" "${gpu[*]}" <<'JS'
const fs = require('node:fs');
const path = require('node:path');
const [cpuDir, gpuDir, outFile, cpuT, gpuT] = process.argv.slice(2);
const med = (s) => s.split(' ').map((ms) => Number(ms) / 1000).sort((a, b) => a - b)[1];
let elements = 0, differing = 0;
for (const f of fs.readdirSync(cpuDir).filter((x) => x.endsWith('.safetensors'))) {
  const a = fs.readFileSync(path.join(cpuDir, f)), b = fs.readFileSync(path.join(gpuDir, f));
  const da = a.subarray(8 + Number(a.readBigUInt64LE(0))), db = b.subarray(8 + Number(b.readBigUInt64LE(0)));
  const ua = new Uint16Array(da.buffer, da.byteOffset, da.length / 2), ub = new Uint16Array(db.buffer, db.byteOffset, db.length / 2);
  elements += ua.length;
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) differing++;
}
const r = { preset: process.env.P, cpuSeconds: med(cpuT), gpuSeconds: med(gpuT), ratioGpuToCpu: med(gpuT) / med(cpuT), elements, differing, runs: { cpu: cpuT, gpu: gpuT } };
fs.writeFileSync(outFile, JSON.stringify(r, null, 2) + '\n');
console.log(JSON.stringify(r));
JS
node dist/cli.js inspect "$DEMO/out-gpu" --json | node -e 'const r=JSON.parse(require("fs").readFileSync(0,"utf8")); console.log("backend recorded in the output:", JSON.parse(r.shards[0].metadata.chatvec).backend)' 

LORA_RANK="${LORA_RANK:-16}"
if [ "$LORA_RANK" != "0" ]; then
  lora() { # backend → the result line's JSON, timed
    local t0 t1
    t0=$(date +%s%N)
    node dist/cli.js extract --base "$DEMO/$P-base" --chat "$DEMO/$P-chat" --rank "$LORA_RANK" --out "$DEMO/lora-$1" \
      --overwrite --json --backend "$1" | grep '"type":"result"' | node -e '
        const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
        console.log(JSON.stringify({ backend: r.backend, ...r.lowRank }));'
    t1=$(date +%s%N)
    echo "  ($1: $(( (t1 - t0) / 1000000 )) ms)"
  }
  echo "extract --rank $LORA_RANK, CPU:"; lora cpu | tee "$RESULTS/gpu-check-lora-cpu.txt"
  echo "extract --rank $LORA_RANK, GPU GEMMs:"; lora gpu | tee "$RESULTS/gpu-check-lora-gpu.txt"
fi
