/**
 * The WGSL implementations of the kernels (combine, diff statistics), generated per signature
 * (input dtypes, terms, output dtype); see compute/types.ts for what each computes.
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
import type { KernelDtype } from '../types';

/** Threads per workgroup for both kernels: 128 is the compatibility-mode default limit. */
export const WORKGROUP = 128;
/** Elements one combine workgroup covers (two per thread: one u32 of 16-bit output). */
export const COMBINE_ELEMS_PER_GROUP = WORKGROUP * 2;
/** The most terms one combine takes on the GPU (the uniform block holds 8 ratios). */
export const GPU_MAX_TERMS = 8;
/** Elements per thread in the diff reduction. */
export const DIFF_PER_THREAD = 16;
/** Elements one diff workgroup covers; its float32 partial sums cover this many. */
export const DIFF_ELEMS_PER_GROUP = WORKGROUP * DIFF_PER_THREAD;
/** u32 words each diff workgroup writes: 5 float32 sums/max, then 3 counts (changed, non-finite, big). */
export const DIFF_WORDS_PER_GROUP = 8;
/**
 * Smallest float32 biased exponent counted as "big" by the diff kernel: below 2^56 no float32
 * partial of a workgroup can overflow (|d| < 2^57, d² < 2^114, 2,048 terms < 2^125); a workgroup
 * holding a bigger finite input is summed again on the host in float64.
 */
const DIFF_BIG_EXPONENT = 127 + 56;
/** Bytes of the uniform block; each block's parameters sit at a 256-byte-aligned offset. */
export const PARAMS_BYTES = 128;

/** The shape of a combine (its dtypes, null for an absent input), which selects (and caches) a pipeline. */
export interface CombineSig {
  readonly target: KernelDtype | null;
  readonly terms: readonly { readonly a: KernelDtype; readonly b: KernelDtype | null }[];
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

/** The input sections of a combine signature in order: target, then each term's a and b. */
export function combineSections(sig: CombineSig): KernelDtype[] {
  const out: KernelDtype[] = sig.target ? [sig.target] : [];
  for (const t of sig.terms) out.push(t.a, ...(t.b ? [t.b] : []));
  return out;
}

/** A key naming the pipeline of a signature. */
export function combineKey(sig: CombineSig): string {
  return `combine:${sig.target ?? '-'}>${sig.out}:${sig.terms.map((t) => `${t.a}-${t.b ?? '-'}`).join(',')}`;
}

/**
 * The combine kernel: acc = target (−0 without one: −0 + m = m for every m, so that equals the
 * reference's "first product alone"); acc = acc + r·(a − b) per term (r·a without b); one rounding.
 * Params: n (elements in the block), gridX, zero (always 0 at run time), ratios[8], offs[20].
 * `keep(m)` xors m's bits with P.zero: the value is unchanged, but the compiler cannot see
 * through it, so r·d is rounded to float32 before the add and never contracted into an FMA —
 * the GPU then matches the CPU's operation order bit for bit.
 */
export function combineShader(sig: CombineSig): string {
  const sections = combineSections(sig);
  const lines: string[] = [];
  let j = 0;
  lines.push(sig.target ? `  var acc = bitcast<f32>(${ld(sig.target)}(${off(j++)}, i));` : '  var acc = bitcast<f32>(0x80000000u);');
  sig.terms.forEach((t, ti) => {
    const r = `P.ratios[${ti >> 2}].${'xyzw'[ti & 3]}`;
    if (t.b) {
      lines.push(`  { let d = bitcast<f32>(${ld(t.a)}(${off(j)}, i)) - bitcast<f32>(${ld(t.b)}(${off(j + 1)}, i));`);
      lines.push(`    let m = ${r} * d;`);
      lines.push('    acc = acc + keep(m); }');
      j += 2;
    } else {
      lines.push(`  { let m = ${r} * bitcast<f32>(${ld(t.a)}(${off(j)}, i));`);
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

/** The shape of a diff: its mode and input dtypes (a null: A is 0). */
export interface DiffSig {
  readonly mode: 'ab' | 'delta';
  readonly a: KernelDtype | null;
  readonly b: KernelDtype;
}

/** A key naming the diff pipeline of a signature. */
export function diffKey(sig: DiffSig): string {
  return `diff:${sig.mode}:${sig.a ?? '-'}-${sig.b}`;
}

/**
 * The diff kernel: per workgroup of DIFF_ELEMS_PER_GROUP elements, float32 partials of Σd², Σa²,
 * Σb², max|d|, Σ|d| over finite pairs and u32 counts of changed pairs, non-finite pairs and
 * finite pairs with an input of exponent ≥ DIFF_BIG_EXPONENT. Σab is not summed: the host takes it
 * from Σa², Σb² and Σd², as the SIMD kernel does (../diffBound.ts). Mode ab: d = b − a; mode delta: b
 * holds Δ = d and B = A + Δ (A = 0 without a). Which pairs are finite and which changed is decided
 * on bits, exactly as the CPU decides it. Each thread sums its elements serially (stride
 * WORKGROUP), then a tree in workgroup memory. Params: n, gridX, groups (workgroups with data),
 * offA, offB (word offsets; offA unused without a).
 */
export function diffShader(sig: DiffSig): string {
  const f = ['d2', 'a2', 'b2', 'mx', 'sa'];
  const u = ['ch', 'nf', 'big'];
  const loadA = sig.a ? `${ld(sig.a)}(P.offA, i)` : '0u';
  const delta = sig.mode === 'delta';
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
${u.map((k) => `var<workgroup> w_${k}: array<u32, ${WORKGROUP}>;`).join('\n')}

fn expo(x: u32) -> u32 { return (x >> 23u) & 0xffu; }

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wid.y * P.gridX + wid.x;
  let first = g * ${DIFF_ELEMS_PER_GROUP}u;
  var d2 = 0.0; var a2 = 0.0; var b2 = 0.0; var mx = 0.0; var sa = 0.0;
  var ch = 0u; var nf = 0u; var big = 0u;
  for (var k = 0u; k < ${DIFF_PER_THREAD}u; k = k + 1u) {
    let i = first + k * ${WORKGROUP}u + lid;
    if (i < P.n) {
      let xa = ${loadA};
      let xb = ${ld(sig.b)}(P.offB, i);
      if (expo(xa) == 0xffu || expo(xb) == 0xffu) {
        nf = nf + 1u;
      } else {
        ${delta ? 'if ((xb & 0x7fffffffu) != 0u) { ch = ch + 1u; }' : 'if (xa != xb && ((xa | xb) & 0x7fffffffu) != 0u) { ch = ch + 1u; }'}
        if (max(expo(xa), expo(xb)) >= ${DIFF_BIG_EXPONENT}u) { big = big + 1u; }
        let fa = bitcast<f32>(xa);
        ${delta ? 'let d = bitcast<f32>(xb); let fb = fa + d;' : 'let fb = bitcast<f32>(xb); let d = fb - fa;'}
        let ad = abs(d);
        d2 = d2 + d * d;
        a2 = a2 + fa * fa;
        b2 = b2 + fb * fb;
        sa = sa + ad;
        mx = max(mx, ad);
      }
    }
  }
${[...f, ...u].map((k) => `  w_${k}[lid] = ${k};`).join('\n')}
  workgroupBarrier();
  for (var s = ${WORKGROUP / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) {
${[...f, ...u]
  .filter((k) => k !== 'mx')
  .map((k) => `      w_${k}[lid] = w_${k}[lid] + w_${k}[lid + s];`)
  .join('\n')}
      w_mx[lid] = max(w_mx[lid], w_mx[lid + s]);
    }
    workgroupBarrier();
  }
  if (lid == 0u && g < P.groups) {
    let o = g * ${DIFF_WORDS_PER_GROUP}u;
${f.map((k, i) => `    dst[o + ${i}u] = bitcast<u32>(w_${k}[0]);`).join('\n')}
${u.map((k, i) => `    dst[o + ${i + f.length}u] = w_${k}[0];`).join('\n')}
  }
}
`;
}
