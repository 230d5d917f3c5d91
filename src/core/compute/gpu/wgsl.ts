/**
 * WGSL sources of the GPU kernels, generated per signature (input dtypes, terms, output dtype).
 *
 * Data layout: one storage binding `src` (array<u32>) holds a *block* of every input, one section
 * after another (BF16/F16 packed two per u32, low half first — little-endian, as in the file;
 * F32 one per u32); section j starts at word P.offs[j]. `dst` is the block's output window.
 * Dispatches are 2-D (x·y workgroups, x = P.gridX) so that no dimension exceeds the limit.
 *
 * Everything that decides bits is integer code: dtype decode/encode, NaN/Inf tests, equality.
 * WGSL lets an implementation assume no NaN/Inf in float operations, so no float compare is
 * trusted with them.
 */
import type { KernelDtype } from '../elements';

/** Threads per workgroup for both kernels: 128 is the compatibility-mode default limit. */
export const WORKGROUP = 128;
/** Elements one fused-apply workgroup covers (two per thread: one u32 of 16-bit output). */
export const FUSED_ELEMS_PER_GROUP = WORKGROUP * 2;
/** Elements per thread in the reduction. */
export const REDUCE_PER_THREAD = 16;
/** Elements one reduction workgroup covers; its float32 partial sums cover this many. */
export const REDUCE_ELEMS_PER_GROUP = WORKGROUP * REDUCE_PER_THREAD;
/** u32 words each reduction workgroup writes: 6 float32 sums/max, then 2 counts. */
export const REDUCE_WORDS_PER_GROUP = 8;
/** Bytes of the uniform block; each block's parameters sit at a 256-byte-aligned offset. */
export const PARAMS_BYTES = 128;

/** A fused-apply term's input dtypes. */
export type TermSig = { readonly kind: 'pair'; readonly chat: KernelDtype; readonly base: KernelDtype } | { readonly kind: 'tau'; readonly tau: KernelDtype };

/** The shape of a fused apply, which selects (and caches) a pipeline. */
export interface FusedSig {
  readonly cp: KernelDtype;
  readonly terms: readonly TermSig[];
  readonly out: KernelDtype;
}

const COMMON = /* wgsl */ `
fn h16(o: u32, i: u32) -> u32 {
  let w = src[o + (i >> 1u)];
  return select(w & 0xffffu, w >> 16u, (i & 1u) == 1u);
}
// Each ld_* returns the float32 bit pattern of element i of the section at word o.
fn ld_f32(o: u32, i: u32) -> u32 { return src[o + i]; }
fn ld_bf16(o: u32, i: u32) -> u32 { return h16(o, i) << 16u; }
fn ld_f16(o: u32, i: u32) -> u32 {
  let h = h16(o, i);
  let s = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) { return s | 0x7f800000u | (m << 13u); }
  if (e != 0u) { return s | ((e + 112u) << 23u) | (m << 13u); }
  if (m == 0u) { return s; }
  // subnormal binary16: normalize the mantissa (top bit to bit 10) into a normal float32
  let sh = countLeadingZeros(m) - 21u;
  return s | ((113u - sh) << 23u) | (((m << sh) & 0x3ffu) << 13u);
}
`;

const ENCODE = /* wgsl */ `
// float32 bits -> bfloat16 bits, nearest even; NaN stays NaN (quiet, sign kept)
fn enc_bf16(x: u32) -> u32 {
  if ((x & 0x7fffffffu) > 0x7f800000u) { return ((x >> 16u) | 0x40u) & 0xffffu; }
  return ((x + 0x7fffu + ((x >> 16u) & 1u)) >> 16u) & 0xffffu;
}
// float32 bits -> binary16 bits, nearest even; overflow to Inf; NaN stays NaN
fn enc_f16(x: u32) -> u32 {
  let sign = (x >> 16u) & 0x8000u;
  let ex = (x >> 23u) & 0xffu;
  var mant = x & 0x7fffffu;
  if (ex == 0xffu) { return sign | 0x7c00u | select(0u, 0x200u | (mant >> 13u), mant != 0u); }
  let e = i32(ex) - 112;
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    if (e < -10) { return sign; }
    mant = mant | 0x800000u;
    let shift = u32(14 - e);
    let half = 1u << (shift - 1u);
    let rem = mant & ((1u << shift) - 1u);
    var r = mant >> shift;
    if (rem > half || (rem == half && (r & 1u) != 0u)) { r = r + 1u; }
    return sign | r;
  }
  var r = (u32(e) << 10u) | (mant >> 13u);
  let rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u) != 0u)) { r = r + 1u; }
  return sign | r;
}
`;

function ld(d: KernelDtype): string {
  return d === 'F32' ? 'ld_f32' : d === 'BF16' ? 'ld_bf16' : 'ld_f16';
}

/** `P.offs[k].c`: the word offset of section j. */
function off(j: number): string {
  return `P.offs[${j >> 2}].${'xyzw'[j & 3]}`;
}

/** Number of input sections of a fused signature: cp, then chat/base per pair or τ. */
export function fusedSections(sig: FusedSig): KernelDtype[] {
  const out: KernelDtype[] = [sig.cp];
  for (const t of sig.terms) {
    if (t.kind === 'pair') out.push(t.chat, t.base);
    else out.push(t.tau);
  }
  return out;
}

/** A key naming the pipeline of a signature. */
export function fusedKey(sig: FusedSig): string {
  return `fused:${sig.cp}>${sig.out}:${sig.terms.map((t) => (t.kind === 'pair' ? `${t.chat}-${t.base}` : `t${t.tau}`)).join(',')}`;
}

/**
 * The fused-apply kernel: acc = cp; acc = acc + r·(chat − base) per term; one rounding.
 * Params: n (elements in the block), gridX, zero (always 0 at run time), ratios[8], offs[20].
 * `keep(m)` xors m's bits with P.zero: the value is unchanged, but the compiler cannot see
 * through it, so r·d is rounded to float32 before the add and never contracted into an FMA —
 * the GPU then matches the CPU's operation order bit for bit.
 */
export function fusedShader(sig: FusedSig): string {
  const sections = fusedSections(sig);
  const lines: string[] = [];
  lines.push(`  var acc = bitcast<f32>(${ld(sig.cp)}(${off(0)}, i));`);
  let j = 1;
  sig.terms.forEach((t, ti) => {
    const r = `P.ratios[${ti >> 2}].${'xyzw'[ti & 3]}`;
    if (t.kind === 'pair') {
      lines.push(`  { let d = bitcast<f32>(${ld(t.chat)}(${off(j)}, i)) - bitcast<f32>(${ld(t.base)}(${off(j + 1)}, i));`);
      lines.push(`    let m = ${r} * d;`);
      lines.push('    acc = acc + keep(m); }');
      j += 2;
    } else {
      lines.push(`  { let m = ${r} * bitcast<f32>(${ld(t.tau)}(${off(j)}, i));`);
      lines.push('    acc = acc + keep(m); }');
      j += 1;
    }
  });
  if (sections.length > 20) throw new RangeError('too many sections');
  const store =
    sig.out === 'F32'
      ? `  dst[i0] = v0;\n  if (has1) { dst[i0 + 1u] = v1; }`
      : `  dst[w] = ${sig.out === 'BF16' ? 'enc_bf16' : 'enc_f16'}(v0) | (${sig.out === 'BF16' ? 'enc_bf16' : 'enc_f16'}(v1) << 16u);`;
  return /* wgsl */ `
struct Params {
  n: u32,
  gridX: u32,
  zero: u32,
  pad: u32,
  ratios: array<vec4<f32>, 2>,
  offs: array<vec4<u32>, 5>,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
${COMMON}
${ENCODE}
fn keep(x: f32) -> f32 { return bitcast<f32>(bitcast<u32>(x) ^ P.zero); }

fn elem(i: u32) -> u32 {
${lines.join('\n')}
  return bitcast<u32>(acc);
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = (wid.y * P.gridX + wid.x) * ${WORKGROUP}u + lid;
  let i0 = w * 2u;
  if (i0 >= P.n) { return; }
  let has1 = i0 + 1u < P.n;
  let v0 = elem(i0);
  var v1 = 0u;
  if (has1) { v1 = elem(i0 + 1u); }
${store}
}
`;
}

/** A key naming the reduction pipeline of a dtype pair. */
export function reduceKey(a: KernelDtype, b: KernelDtype): string {
  return `diff:${a}-${b}`;
}

/**
 * The diff reduction: per workgroup of REDUCE_ELEMS_PER_GROUP elements, float32 partials of
 * Σd², Σa², Σb², Σab, max|d|, Σ|d| over finite pairs (d = b − a) and u32 counts of b≠a and of
 * non-finite pairs. Each thread sums its elements serially (stride WORKGROUP), then a tree in
 * workgroup memory. Params: n, gridX, groups (workgroups with data), offA, offB (word offsets).
 */
export function reduceShader(a: KernelDtype, b: KernelDtype): string {
  const f = ['d2', 'a2', 'b2', 'ab', 'mx', 'sa'];
  return /* wgsl */ `
struct Params {
  n: u32,
  gridX: u32,
  groups: u32,
  pad: u32,
  offA: u32,
  offB: u32,
  pad2: u32,
  pad3: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
${COMMON}
${f.map((k) => `var<workgroup> w_${k}: array<f32, ${WORKGROUP}>;`).join('\n')}
var<workgroup> w_cnt: array<u32, ${WORKGROUP}>;
var<workgroup> w_nf: array<u32, ${WORKGROUP}>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wid.y * P.gridX + wid.x;
  let first = g * ${REDUCE_ELEMS_PER_GROUP}u;
  var d2 = 0.0; var a2 = 0.0; var b2 = 0.0; var ab = 0.0; var mx = 0.0; var sa = 0.0;
  var cnt = 0u; var nf = 0u;
  for (var k = 0u; k < ${REDUCE_PER_THREAD}u; k = k + 1u) {
    let i = first + k * ${WORKGROUP}u + lid;
    if (i < P.n) {
      let xa = ${ld(a)}(P.offA, i);
      let xb = ${ld(b)}(P.offB, i);
      let nanA = (xa & 0x7fffffffu) > 0x7f800000u;
      let nanB = (xb & 0x7fffffffu) > 0x7f800000u;
      let same = xa == xb || ((xa | xb) & 0x7fffffffu) == 0u;
      if (nanA || nanB || !same) { cnt = cnt + 1u; }
      if ((xa & 0x7f800000u) != 0x7f800000u && (xb & 0x7f800000u) != 0x7f800000u) {
        let fa = bitcast<f32>(xa);
        let fb = bitcast<f32>(xb);
        let d = fb - fa;
        let ad = abs(d);
        d2 = d2 + d * d;
        a2 = a2 + fa * fa;
        b2 = b2 + fb * fb;
        ab = ab + fa * fb;
        sa = sa + ad;
        mx = max(mx, ad);
      } else {
        nf = nf + 1u;
      }
    }
  }
${f.map((k) => `  w_${k}[lid] = ${k};`).join('\n')}
  w_cnt[lid] = cnt;
  w_nf[lid] = nf;
  workgroupBarrier();
  for (var s = ${WORKGROUP / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) {
${f
  .filter((k) => k !== 'mx')
  .map((k) => `      w_${k}[lid] = w_${k}[lid] + w_${k}[lid + s];`)
  .join('\n')}
      w_mx[lid] = max(w_mx[lid], w_mx[lid + s]);
      w_cnt[lid] = w_cnt[lid] + w_cnt[lid + s];
      w_nf[lid] = w_nf[lid] + w_nf[lid + s];
    }
    workgroupBarrier();
  }
  if (lid == 0u && g < P.groups) {
    let o = g * ${REDUCE_WORDS_PER_GROUP}u;
${f.map((k, i) => `    dst[o + ${i}u] = bitcast<u32>(w_${k}[0]);`).join('\n')}
    dst[o + 6u] = w_cnt[0];
    dst[o + 7u] = w_nf[0];
  }
}
`;
}
