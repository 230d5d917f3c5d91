/**
 * The WGSL implementation of the GEMM kernel of the randomized SVD (the JavaScript reference is
 * compute/kernels/gemmJs.ts; the host side is gemmGpu.ts): a row block of a float32 matrix M
 * (rows × n, row-major) times a float32 panel X of l columns.
 *
 *   'panel'  : O[r0 + i, c]  = Σ_{j<n}    M[i, j] · X[j, c]           (M · X, rows r0 … of the output)
 *   'panelT' : O[j, c]       = O[j, c] + Σ_{i<rows} M[i, j] · X[r0 + i, c]   (Mᵀ · X, one row block;
 *              P.acc = 0 starts from 0 for the first block)
 *
 * Each output element is summed by one thread, in float32, in ascending order of the summation
 * index — over the row blocks too, because a later block starts from the earlier blocks' sum — so
 * the result is a plain sequential float32 dot product (FMA contraction allowed). Its error bound
 * is GPU_GEMM_RELATIVE_BOUND (gemmBound in gemmGpu.ts). Tiles of 16 × 16 outputs, 16 × 8 threads
 * (128 threads: the compatibility-mode limit), two outputs per thread.
 */

/** Output tile edge; the dispatch is ⌈l/TILE⌉ × ⌈output rows/TILE⌉ workgroups. */
export const GEMM_TILE = 16;
/** Bytes of the GEMM's uniform block (8 u32); each dispatch's sits at a 256-byte-aligned offset. */
export const GEMM_PARAMS_BYTES = 32;

export type GemmOp = 'panel' | 'panelT';

const HEAD = /* wgsl */ `
struct P { rows: u32, n: u32, l: u32, r0: u32, acc: u32, p0: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<uniform> P_: P;
@group(0) @binding(1) var<storage, read> M: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read_write> O: array<f32>;
// ta: the tile of the left operand [output row][k]; tb: the tile of X [k][column].
var<workgroup> ta: array<f32, 256>;
var<workgroup> tb: array<f32, 256>;
`;

/** The WGSL source of one GEMM operation. */
export function gemmShader(op: GemmOp): string {
  // K: the summation length; loadA fills ta[tr][lid.x] / ta[lid.x][tr] for tile row tr.
  const panel = op === 'panel';
  return `${HEAD}
@compute @workgroup_size(16, 8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let c = wg.x * 16u + lid.x;
  let row0 = wg.y * 16u;
  let K = ${panel ? 'P_.n' : 'P_.rows'};
  let outRows = ${panel ? 'P_.rows' : 'P_.n'};
  var s0 = 0.0;
  var s1 = 0.0;
  if (${panel ? 'false' : 'P_.acc != 0u'}) {
    if (row0 + lid.y < outRows && c < P_.l) { s0 = O[(row0 + lid.y) * P_.l + c]; }
    if (row0 + lid.y + 8u < outRows && c < P_.l) { s1 = O[(row0 + lid.y + 8u) * P_.l + c]; }
  }
  for (var k0 = 0u; k0 < K; k0 = k0 + 16u) {
    for (var h = 0u; h < 2u; h = h + 1u) {
      let tr = lid.y + 8u * h;
      var a = 0.0;
${
  panel
    ? `      // ta[tr][lid.x] = M[row0 + tr, k0 + lid.x]
      if (row0 + tr < P_.rows && k0 + lid.x < P_.n) { a = M[(row0 + tr) * P_.n + k0 + lid.x]; }
      ta[tr * 16u + lid.x] = a;`
    : `      // ta[lid.x][tr] = Mᵀ[row0 + lid.x, k0 + tr] = M[k0 + tr, row0 + lid.x] (reads along a row of M)
      if (k0 + tr < P_.rows && row0 + lid.x < P_.n) { a = M[(k0 + tr) * P_.n + row0 + lid.x]; }
      ta[lid.x * 16u + tr] = a;`
}
      var b = 0.0;
      if (k0 + tr < K && c < P_.l) { b = X[(${panel ? '' : 'P_.r0 + '}k0 + tr) * P_.l + c]; }
      tb[tr * 16u + lid.x] = b;
    }
    workgroupBarrier();
    for (var k = 0u; k < 16u; k = k + 1u) {
      let x = tb[k * 16u + lid.x];
      s0 = s0 + ta[lid.y * 16u + k] * x;
      s1 = s1 + ta[(lid.y + 8u) * 16u + k] * x;
    }
    workgroupBarrier();
  }
  let o = ${panel ? 'P_.r0 + ' : ''}row0 + lid.y;
  if (row0 + lid.y < outRows && c < P_.l) { O[o * P_.l + c] = s0; }
  if (row0 + lid.y + 8u < outRows && c < P_.l) { O[(o + 8u) * P_.l + c] = s1; }
}
`;
}
