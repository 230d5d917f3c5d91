// Micro-benchmark of the chunk kernels: the CPU's (WebAssembly SIMD, else the JavaScript
// reference) against the GPU backend's on one fused
// apply out = cp + r·(chat − base) and one diff reduction over synthetic BF16 data, plus the
// count of output elements where the two differ. Not a test: timings depend on the machine.
//   node --import tsx scripts/bench-gpu.mjs [--elements 16777216] [--terms 1] [--repeat 3]
// Runs with whatever adapter exists (EGL_PLATFORM=surfaceless is set for Mesa's llvmpipe).
process.env.EGL_PLATFORM ??= 'surfaceless';
const { cpuCombine, cpuDiff } = await import('../src/core/compute/kernels/cpu.ts');
const { createGpuBackend } = await import('../src/core/compute/gpu/gpuBackend.ts');
const { gpuSelfTest } = await import('../src/core/compute/gpu/selfTest.ts');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const n = arg('elements', 16 * 1024 * 1024);
const terms = arg('terms', 1);
const repeat = arg('repeat', 3);

let seed = 12345;
const rand16 = () => {
  const a = new Uint16Array(n);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    f[0] = ((seed / 2 ** 32) - 0.5) * 0.1;
    a[i] = u[0] >>> 16;
  }
  return { dtype: 'BF16', data: a };
};
const target = rand16();
const args = (out) => ({ target, terms: req.terms, out });
const req = { terms: Array.from({ length: terms }, (_, i) => ({ ratio: 1 - i * 0.1, a: rand16(), b: rand16() })) };
const outArray = () => ({ dtype: 'BF16', data: new Uint16Array(n) });
const applyBytes = n * 2 * (1 + 2 * terms);
const diffBytes = n * 2 * 2;

async function time(label, bytes, fn) {
  let best = Infinity;
  let out;
  for (let r = 0; r < repeat; r++) {
    const t0 = performance.now();
    out = await fn();
    best = Math.min(best, performance.now() - t0);
  }
  console.log(`${label.padEnd(28)} ${best.toFixed(1).padStart(9)} ms  ${(bytes / best / 1e6).toFixed(2).padStart(8)} GB/s read`);
  return out;
}

console.log(`${n} elements, ${terms} term(s), BF16 in/out, best of ${repeat}`);
const cpuOut = outArray();
await time(`cpu fused apply (${cpuCombine().impl})`, applyBytes, () => cpuCombine().run(args(cpuOut)));
await time(`cpu diff (${cpuDiff().impl})`, diffBytes, () => cpuDiff().run({ mode: 'ab', a: target, b: req.terms[0].a }));
let gpu;
try {
  gpu = await createGpuBackend();
} catch (e) {
  console.log(`no GPU: ${e.message}`);
  process.exit(0);
}
console.log(`GPU: ${gpu.name}`);
const gpuOut = outArray();
await time('gpu fused apply', applyBytes, () => gpu.combine(args(gpuOut)));
await time('gpu diff', diffBytes, () => gpu.diff({ mode: 'ab', a: target, b: req.terms[0].a }));
let differ = 0;
for (let i = 0; i < n; i++) if (cpuOut.data[i] !== gpuOut.data[i]) differ++;
console.log(`elements differing between CPU and GPU: ${differ} of ${n}`);
console.log(`self-test: ${JSON.stringify(await gpuSelfTest(gpu))}`);
await gpu.dispose();
