// A float64 reference of mergekit's generalized task arithmetic (generalized_task_arithmetic.py),
// written from mergekit's code, not from src: task vectors in float32, a sparsifier per model
// given by the test, weights, optional TIES sign election by mass, normalize, λ, + base.
import assert from 'node:assert/strict';

const f = Math.fround;

/** base + λ·mix of wᵢ·τ̂ᵢ (sum, or TIES sign election by mass), optional normalize; marks near-tie votes as fragile. */
export function gtaReference(base: Float64Array, models: Float64Array[], weights: number[], keep: ((t: Float64Array) => Float64Array)[], o: { consensus: boolean; normalize: boolean; lambda: number }) {
  const n = base.length;
  const kept = models.map((m, k) => keep[k]!(Float64Array.from(m, (x, i) => f(x - base[i]!))));
  const ref = new Float64Array(n);
  const scale = new Float64Array(n);
  const fragile = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v = kept.map((t, k) => t[i]! * weights[k]!);
    const sum = v.reduce((a, x) => a + x, 0);
    const mass = v.reduce((a, x) => a + Math.abs(x), 0);
    let mixed = 0;
    let div = 0;
    v.forEach((x, k) => {
      if (!o.consensus || Math.sign(x) === (sum >= 0 ? 1 : -1)) {
        mixed += x;
        div += weights[k]!;
      }
    });
    if (!o.consensus) div = weights.reduce((a, w) => a + w, 0);
    if (o.consensus ? div === 0 : Math.abs(div) < 1e-8) div = 1;
    if (o.normalize) mixed /= div;
    ref[i] = base[i]! + o.lambda * mixed;
    scale[i] = Math.abs(base[i]!) + 4 * mass * Math.max(1, o.lambda);
    fragile[i] = o.consensus && mass > 0 && Math.abs(sum) <= 1e-5 * mass ? 1 : 0; // a vote a rounding may flip (not an all-dropped element)
  }
  return { ref, scale, fragile };
}

export function assertClose(name: string, got: Float64Array, r: ReturnType<typeof gtaReference>): void {
  assert.equal(got.length, r.ref.length, name);
  let bad = 0;
  for (let i = 0; i < got.length; i++) {
    const tol = 1e-6 * (Math.abs(r.ref[i]!) + r.scale[i]!) + 1e-12;
    if (Math.abs(got[i]! - r.ref[i]!) > tol && !r.fragile[i] && bad++ < 3) assert.fail(`${name}[${i}]: got ${got[i]}, reference ${r.ref[i]}`);
  }
}

