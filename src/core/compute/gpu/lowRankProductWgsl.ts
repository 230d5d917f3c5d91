/**
 * The WGSL implementation of the low-rank product (the JavaScript reference is
 * compute/kernels/lowRankJs.ts; the host side is lowRankProductGpu.ts): one thread per element of τ,
 * Σ_k B[i,k]·A[k,j] ('BA') or Σ_k A[k,i]·B[j,k] ('transposed') summed in double-float — a float32
 * pair hi + lo — with exact products (TwoProd) and the accurate double-float addition, then hi,
 * which is the sum rounded once to float32. compute/lowRankBound.ts states how far that may lie
 * from the CPU's float64 sum.
 *
 * Error-free transformations need every float32 operation rounded on its own, in the order
 * written: `keep(x)` xors x's bits with P.zero (0 at run time, unknown to the compiler), so no
 * compiler can contract, reassociate or cancel across it (e.g. rewrite (s − a) − s as −a).
 *
 * TwoProd comes in two forms: 'fma' (p = a·b, e = fma(a, b, −p); exact only where fma is fused,
 * which WGSL does not promise) and 'split' (Veltkamp/Dekker: a and b cut into 12-bit halves whose
 * products are exact; about 17 operations instead of 2). lowRankProductGpu.ts probes which is exact.
 */

/** How the kernel splits a product into p + e. */
export type TwoProdMethod = 'fma' | 'split';

/** Threads per workgroup (the compatibility-mode limit). */
export const LOW_RANK_WORKGROUP = 128;
/** Bytes of the uniform block (8 u32). */
export const LOW_RANK_PARAMS_BYTES = 32;

const EFT = /* wgsl */ `
fn keep(x: f32) -> f32 { return bitcast<f32>(bitcast<u32>(x) ^ P_.zero); }
// Knuth's TwoSum: s + e = a + b exactly.
fn two_sum(a: f32, b: f32) -> vec2<f32> {
  let s = keep(a + b);
  let bb = keep(s - a);
  let e = keep(keep(a - keep(s - bb)) + keep(b - bb));
  return vec2<f32>(s, e);
}
// FastTwoSum, for |a| >= |b| (or a = 0).
fn fast_two_sum(a: f32, b: f32) -> vec2<f32> {
  let s = keep(a + b);
  return vec2<f32>(s, keep(b - keep(s - a)));
}
// Accurate double-float addition (Joldes, Muller, Popescu 2017, Alg. 6).
fn dw_add(x: vec2<f32>, y: vec2<f32>) -> vec2<f32> {
  let s = two_sum(x.x, y.x);
  let t = two_sum(x.y, y.y);
  let v = fast_two_sum(s.x, keep(s.y + t.x));
  return fast_two_sum(v.x, keep(t.y + v.y));
}
`;

const TWO_PROD: Record<TwoProdMethod, string> = {
  fma: /* wgsl */ `
fn two_prod(a: f32, b: f32) -> vec2<f32> {
  let p = keep(a * b);
  return vec2<f32>(p, keep(fma(a, b, -p)));
}
`,
  split: /* wgsl */ `
// Veltkamp's split: hi holds the top 12 bits of a, lo the rest (exact for |a| < 2^115).
fn split(a: f32) -> vec2<f32> {
  let c = keep(4097.0 * a);
  let hi = keep(c - keep(c - a));
  return vec2<f32>(hi, keep(a - hi));
}
// Dekker's TwoProd: every partial product below is exact.
fn two_prod(a: f32, b: f32) -> vec2<f32> {
  let p = keep(a * b);
  let x = split(a);
  let y = split(b);
  let e = keep(keep(keep(keep(keep(x.x * y.x) - p) + keep(x.x * y.y)) + keep(x.y * y.x)) + keep(x.y * y.y));
  return vec2<f32>(p, e);
}
`,
};

/**
 * The kernel of one layout. Params: count (elements of the chunk), firstCol (column of its first
 * element), cols, rows, rank, gridX, zero (0), row0 (row of its first element). L and R are the
 * factors as LowRankArgs lays them out ('BA': L holds rows row0 … of B); O gets τ in float32.
 */
export function lowRankShader(layout: 'BA' | 'transposed', method: TwoProdMethod): string {
  const product =
    layout === 'BA'
      ? 'two_prod(L[li * P_.rank + k], R[k * P_.cols + j])'
      : 'two_prod(L[k * P_.rows + P_.row0 + li], R[j * P_.rank + k])';
  return /* wgsl */ `
struct P { count: u32, firstCol: u32, cols: u32, rows: u32, rank: u32, gridX: u32, zero: u32, row0: u32 }
@group(0) @binding(0) var<uniform> P_: P;
@group(0) @binding(1) var<storage, read> L: array<f32>;
@group(0) @binding(2) var<storage, read> R: array<f32>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
${EFT}
${TWO_PROD[method]}
@compute @workgroup_size(${LOW_RANK_WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.y * P_.gridX + wid.x) * ${LOW_RANK_WORKGROUP}u + lid;
  if (e >= P_.count) { return; }
  // Element e of the chunk is row row0 + li, column j of τ.
  let q = e + P_.firstCol;
  let li = q / P_.cols;
  let j = q - li * P_.cols;
  var s = vec2<f32>(0.0, 0.0);
  for (var k = 0u; k < P_.rank; k = k + 1u) {
    s = dw_add(s, ${product});
  }
  O[e] = s.x;
}
`;
}

/**
 * A probe of TwoProd: for each pair (X[2i], X[2i+1]) it writes p and e to O[2i], O[2i+1];
 * lowRankProductGpu.ts checks p + e = a·b exactly in float64. Params: count (pairs), zero (0).
 */
export function twoProdProbeShader(method: TwoProdMethod): string {
  return /* wgsl */ `
struct P { count: u32, firstCol: u32, cols: u32, rows: u32, rank: u32, gridX: u32, zero: u32, row0: u32 }
@group(0) @binding(0) var<uniform> P_: P;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
fn keep(x: f32) -> f32 { return bitcast<f32>(bitcast<u32>(x) ^ P_.zero); }
${TWO_PROD[method]}
@compute @workgroup_size(${LOW_RANK_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= P_.count) { return; }
  let t = two_prod(X[2u * i], X[2u * i + 1u]);
  O[2u * i] = t.x;
  O[2u * i + 1u] = t.y;
}
`;
}
