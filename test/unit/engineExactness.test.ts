// Exactness of extract and apply against references written here:
//  - float64: ref = cp + Σ rᵢ·(chatᵢ − baseᵢ), rounded once to the output dtype; every output
//    element must be within 1 ulp of it (the bit-exact share is reported);
//  - exact order: round(f32(cp) + f32(rᵢ)·(f32(chatᵢ) − f32(baseᵢ))) with Math.fround after every
//    operation, in that order; the output must equal it bit for bit (NaN: any NaN).
// Checkpoints are built here with seeded values in BF16, F16 and F32 (mixed per tensor and per
// model), including rounding ties, subnormals, ±0, large and small magnitudes, NaN and ±Inf, and
// one tensor that spans two chunks of the engine. The two-step path (extract f32, then apply) must
// give the same tensor bytes as the fused path.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runApply } from '../../src/core/engine/apply';
import { runExtract } from '../../src/core/engine/extract';
import { CHUNK_ELEMENTS } from '../../src/core/engine/chunking';
import {
  type OutFloat,
  type StCheckpoint,
  FLOAT_WIDTH,
  bitsArray,
  decodeAll,
  isNaNBits,
  readCheckpoint,
  rng,
  roundTo,
  roundToBits,
  roundToBitsBySearch,
  tempDir,
  ulpDistance,
  valueOf,
  writeModel,
} from './support/engineFixtures';

type Role = 'base' | 'chat1' | 'chat2' | 'cp';
const ROLES: readonly Role[] = ['base', 'chat1', 'chat2', 'cp'];

interface FixtureTensor {
  readonly name: string;
  readonly shape: number[];
  readonly dtypes: Record<Role, OutFloat>;
  /** The stored values (exactly representable in each model's dtype). */
  readonly values: Record<Role, Float64Array>;
}

const all = (d: OutFloat): Record<Role, OutFloat> => ({ base: d, chat1: d, chat2: d, cp: d });

/** Tensor layout: uniform BF16/F16/F32 tensors and tensors whose dtype differs between models. */
const LAYOUT: { name: string; shape: number[]; dtypes: Record<Role, OutFloat> }[] = [
  { name: 'model.embed_tokens.weight', shape: [64, 48], dtypes: all('BF16') },
  { name: 'model.layers.0.self_attn.q_proj.weight', shape: [48, 48], dtypes: all('BF16') },
  { name: 'model.layers.0.mlp.up_proj.weight', shape: [96, 48], dtypes: all('F16') },
  { name: 'model.layers.0.mlp.down_proj.weight', shape: [48, 96], dtypes: all('F32') },
  { name: 'model.layers.0.input_layernorm.weight', shape: [48], dtypes: { base: 'F32', chat1: 'BF16', chat2: 'F16', cp: 'BF16' } },
  // Larger than one chunk of the engine, so the second chunk's offsets are exercised in every dtype.
  { name: 'model.layers.1.self_attn.k_proj.weight', shape: [1100, 1000], dtypes: { base: 'F16', chat1: 'BF16', chat2: 'F32', cp: 'F16' } },
  { name: 'model.layers.1.mlp.gate_proj.weight', shape: [40, 30], dtypes: { base: 'BF16', chat1: 'F16', chat2: 'F16', cp: 'F32' } },
  { name: 'model.layers.1.mlp.down_proj.weight', shape: [30, 40], dtypes: { base: 'F32', chat1: 'F32', chat2: 'BF16', cp: 'BF16' } },
  { name: 'lm_head.weight', shape: [64, 48], dtypes: all('F16') },
];

const MANT_BITS: Record<OutFloat, number> = { BF16: 7, F16: 10, F32: 23 };
const MIN_SUBNORMAL: Record<OutFloat, number> = { BF16: 2 ** -133, F16: 2 ** -24, F32: 2 ** -149 };

/**
 * Values of one element for the four models, before rounding to each model's dtype. The kinds
 * keep the structure of real checkpoints (chat and cp near base) except where a kind is about
 * special values: a float32 evaluation can only differ from the exact result by more than 1 ulp
 * under heavy cancellation, which the exact-order check covers bit for bit anyway.
 */
function element(rand: () => number, dtypes: Record<Role, OutFloat>, hasF16: boolean): Record<Role, number> {
  const k = rand();
  if (k < 0.6) return realistic(rand, 10 ** (4 * rand() - 2));
  return unusual(rand, k, dtypes, hasF16);
}

function signOf(rand: () => number): number {
  return rand() < 0.5 ? -1 : 1;
}

/** Base at scale s; chat and cp within a few per cent of it. */
function realistic(rand: () => number, s: number): Record<Role, number> {
  const b = signOf(rand) * s * (0.5 + 0.5 * rand());
  return {
    base: b,
    chat1: b + s * 0.02 * (2 * rand() - 1),
    chat2: rand() < 0.2 ? b : b + s * 0.02 * (2 * rand() - 1),
    cp: b + s * 0.03 * (2 * rand() - 1),
  };
}

function unusual(rand: () => number, k: number, dtypes: Record<Role, OutFloat>, hasF16: boolean): Record<Role, number> {
  const sign = () => signOf(rand);
  if (k < 0.72) {
    // A rounding tie in the output dtype: cp + r·h/r with h half an ulp there (r = 0.5 or 1).
    const fmt: OutFloat = (['BF16', 'F16', 'F32'] as const)[Math.floor(rand() * 3)]!;
    const e = Math.floor(rand() * 7) - 3;
    const m = Math.floor(rand() * 2 ** MANT_BITS[fmt]);
    const cp = roundTo(sign() * (1 + m / 2 ** MANT_BITS[fmt]) * 2 ** e, dtypes.cp);
    const binade = Math.floor(Math.log2(Math.abs(cp)));
    const h = sign() * 2 ** (binade - MANT_BITS[fmt] - 1);
    const r = rand() < 0.5 ? 0.5 : 1;
    return { base: 0, chat1: h / r, chat2: 0, cp };
  }
  if (k < 0.8) {
    // Subnormals: integer multiples of the coarsest format's smallest subnormal, 8 significant bits.
    const q = Math.max(...ROLES.map((r) => MIN_SUBNORMAL[dtypes[r]]));
    const b = sign() * (128 + Math.floor(rand() * 128)) * q;
    const small = () => (Math.floor(rand() * 17) - 8) * q;
    return { base: b, chat1: b + small(), chat2: rand() < 0.3 ? b : b + small(), cp: b + small() };
  }
  if (k < 0.86) {
    // Signed zeros: all four ±0, or cp ±0 plus one vector.
    const z = () => sign() * 0;
    if (rand() < 0.5) return { base: z(), chat1: z(), chat2: z(), cp: z() };
    const r = realistic(rand, 1);
    return { ...r, chat2: r.base, cp: z() };
  }
  if (k < 0.91) return realistic(rand, hasF16 ? 1e4 * (1 + rand()) : 10 ** (30 + 6 * rand()));
  if (k < 0.96) return realistic(rand, hasF16 ? 1e-6 * (1 + rand()) : 10 ** (-30 - 6 * rand()));
  const special = k < 0.98 ? NaN : sign() * Infinity;
  const r = realistic(rand, 1);
  r[ROLES[Math.floor(rand() * 4)]!] = special;
  return r;
}

function buildFixture(seed: number, layout: typeof LAYOUT): FixtureTensor[] {
  const rand = rng(seed);
  return layout.map((l) => {
    const n = l.shape.reduce((a, b) => a * b, 1);
    const values = Object.fromEntries(ROLES.map((r) => [r, new Float64Array(n)])) as Record<Role, Float64Array>;
    const hasF16 = ROLES.some((r) => l.dtypes[r] === 'F16');
    for (let i = 0; i < n; i++) {
      const e = element(rand, l.dtypes, hasF16);
      for (const r of ROLES) values[r][i] = roundTo(e[r], l.dtypes[r]);
    }
    return { ...l, values };
  });
}

interface Term {
  readonly ratio: number;
  readonly a: Float64Array;
  /** null: `a` is a stored vector. */
  readonly b: Float64Array | null;
}

interface CheckResult {
  elements: number;
  bitExact: number;
  worstUlp: number;
  /** Float32 outputs of several terms only (see allowance). */
  beyondOneUlp: number;
}

const newResult = (): CheckResult => ({ elements: 0, bitExact: 0, worstUlp: 0, beyondOneUlp: 0 });

/** The spacing of float32 values around |x| (the smaller one at a power of two). */
function ulp32(x: number): number {
  const a = Math.abs(x);
  if (!(a >= 2 ** -126)) return 2 ** -149;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  return 2 ** (e - 23);
}

/**
 * How many ulps a float32 output may be from the float64 reference. For 16-bit outputs and for a
 * single term: 1. With several terms into a float32 output the prescribed evaluation order rounds
 * each partial sum to float32; a partial sum in a higher binade than the result (or cancellation
 * between terms) then weighs more than the final ulp, so the allowance is the forward error bound
 * of that evaluation: ½ ulp per rounded operation plus the rounding of each ratio to float32.
 */
function allowance(cp: number | null, terms: readonly Term[], i: number, outDtype: OutFloat, got: number, ref: number): number {
  if (outDtype !== 'F32' || terms.length < 2) return 1;
  let bound = 0;
  let acc: number | null = cp === null ? null : Math.fround(cp);
  for (const t of terms) {
    const exactD = t.b ? t.a[i]! - t.b[i]! : t.a[i]!;
    const d = Math.fround(exactD);
    const fr = Math.fround(t.ratio);
    const m = Math.fround(fr * d);
    bound += Math.abs(fr - t.ratio) * Math.abs(exactD) + Math.abs(fr) * 0.5 * ulp32(d) + 0.5 * ulp32(m);
    acc = acc === null ? m : Math.fround(acc + m);
    bound += 0.5 * ulp32(acc);
  }
  return Math.max(1, Math.floor(bound / ulp32(Math.min(Math.abs(got), Math.abs(ref))) + 0.5));
}

/**
 * Checks one output tensor against both references.
 * @param oneUlp whether to require ≤ 1 ulp of the float64 reference (false for lossy bf16 vectors)
 */
function checkTensor(name: string, got: Uint8Array, outDtype: OutFloat, cp: Float64Array | null, terms: readonly Term[], res: CheckResult, oneUlp = true): void {
  const n = cp?.length ?? terms[0]!.a.length;
  assert.equal(got.length, n * FLOAT_WIDTH[outDtype], `${name}: byte length`);
  const problems: string[] = [];
  const gotBits = bitsArray(got, outDtype);
  for (let i = 0; i < n; i++) {
    const g = gotBits[i]!;
    // Exact order, float32 after every operation (extract has no target: acc starts at term 1).
    let acc: number | null = cp ? Math.fround(cp[i]!) : null;
    for (const t of terms) {
      const d = t.b ? Math.fround(Math.fround(t.a[i]!) - Math.fround(t.b[i]!)) : Math.fround(t.a[i]!);
      const m = Math.fround(Math.fround(t.ratio) * d);
      acc = acc === null ? m : Math.fround(acc + m);
    }
    const ordered = roundToBits(acc!, outDtype);
    // Float64 reference, one rounding.
    let ref: number | null = cp ? cp[i]! : null;
    for (const t of terms) {
      const m = t.ratio * (t.b ? t.a[i]! - t.b[i]! : t.a[i]!);
      ref = ref === null ? m : ref + m;
    }
    const refBits = roundToBits(ref!, outDtype);
    res.elements++;
    if (Number.isNaN(ref!) || Number.isNaN(acc!) || isNaNBits(g, outDtype)) {
      if (!(isNaNBits(g, outDtype) && Number.isNaN(acc!) && (Number.isNaN(ref!) || !oneUlp))) {
        problems.push(`[${i}] got ${valueOf(outDtype, g)}, exact order ${acc}, float64 ${ref}`);
      } else res.bitExact++;
      continue;
    }
    if (g !== ordered) problems.push(`[${i}] got ${valueOf(outDtype, g)} (0x${g.toString(16)}), exact order gives ${valueOf(outDtype, ordered)} (0x${ordered.toString(16)})`);
    const dist = ulpDistance(g, refBits, outDtype);
    if (dist === 0 && (g === refBits || valueOf(outDtype, g) === 0)) res.bitExact++;
    res.worstUlp = Math.max(res.worstUlp, dist);
    if (dist > 1) res.beyondOneUlp++;
    if (oneUlp && dist > 1 && dist > allowance(cp?.[i] ?? null, terms, i, outDtype, valueOf(outDtype, g), ref!)) problems.push(`[${i}] got ${valueOf(outDtype, g)}, float64 reference ${ref} → ${valueOf(outDtype, refBits)}: ${dist} ulp`);
    if (problems.length >= 5) break;
  }
  assert.deepEqual(problems, [], `${name} (${outDtype}): ${problems.length} element(s) off`);
}

let dir: string;
/** The fixture of the suite that runs (each suite writes its own models). */
let fixture: FixtureTensor[];
const model: Record<Role, string> = { base: '', chat1: '', chat2: '', cp: '' };

function writeFixture(name: string, layout: typeof LAYOUT): void {
  fixture = buildFixture(20240531, layout);
  for (const r of ROLES) {
    model[r] = writeModel(
      path.join(dir, `${name}-${r}`),
      fixture.map((t) => ({ name: t.name, dtype: t.dtypes[r], shape: t.shape, values: t.values[r] })),
    );
  }
}

before(() => (dir = tempDir('exact')));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function report(t: { diagnostic(m: string): void }, label: string, r: CheckResult): void {
  const beyond = r.beyondOneUlp ? ` (${r.beyondOneUlp} float32 element(s) of several terms beyond 1 ulp, within the float32 evaluation's error bound)` : '';
  const line = `${label}: ${r.elements} elements, ${((100 * r.bitExact) / r.elements).toFixed(3)} % bit-exact vs float64, worst ${r.worstUlp} ulp${beyond}`;
  t.diagnostic(line);
  console.log(line);
}

/** Checks every tensor of an apply output made from fused (chat, base) terms. */
function checkFused(out: StCheckpoint, chats: Role[], ratios: number[], dtype: OutFloat | null): CheckResult {
  const res = newResult();
  for (const t of fixture) {
    const o = out.tensors.get(t.name)!;
    const outDtype = dtype ?? t.dtypes.cp;
    assert.equal(o.dtype, outDtype, `${t.name}: output dtype`);
    assert.deepEqual(o.shape, t.shape);
    const terms = chats.map((c, i) => ({ ratio: ratios[i]!, a: t.values[c], b: t.values.base }));
    checkTensor(t.name, o.bytes, outDtype, t.values.cp, terms, res);
  }
  return res;
}

function sameTensorData(a: StCheckpoint, b: StCheckpoint, what: string): void {
  assert.deepEqual(a.order, b.order, `${what}: tensor order`);
  for (const name of a.order) {
    const x = a.tensors.get(name)!;
    const y = b.tensors.get(name)!;
    assert.equal(x.dtype, y.dtype, `${what}: ${name} dtype`);
    assert.deepEqual(x.shape, y.shape, `${what}: ${name} shape`);
    assert.ok(x.bytes.equals(y.bytes), `${what}: ${name} holds different bytes`);
  }
}

describe('the references of these tests', () => {
  it('round to bf16/f16 the same way when found by scaling and by searching the sorted values', () => {
    const rand = rng(5);
    for (const d of ['BF16', 'F16'] as const) {
      const xs: number[] = [0, -0, Infinity, -Infinity, 2 ** 200, -(2 ** -200), 1e-300];
      for (let b = 0; b < 0x7fff; b++) {
        const v = valueOf(d, b);
        const next = valueOf(d, b + 1);
        if (!Number.isFinite(v)) continue;
        const mid = Number.isFinite(next) ? (v + next) / 2 : v + (v - valueOf(d, b - 1)) / 2;
        // the value, the midpoint to the next one, and the doubles just around that midpoint
        xs.push(v, mid, mid * (1 + 2 ** -52), mid * (1 - 2 ** -53), v + (mid - v) * rand());
      }
      for (const x of xs) for (const y of [x, -x]) assert.equal(roundToBits(y, d), roundToBitsBySearch(y, d), `${d} ${y}`);
    }
    assert.equal(roundToBits(1 + 2 ** -8, 'BF16'), 0x3f80, 'tie to even (down)');
    assert.equal(roundToBits(1 + 3 * 2 ** -8, 'BF16'), 0x3f82, 'tie to even (up)');
    assert.equal(roundToBits(65520, 'F16'), 0x7c00, 'halfway past the largest half overflows');
    assert.equal(roundToBits(2 ** -25, 'F16'), 0, 'half the smallest subnormal ties to zero');
    assert.equal(roundToBits(3 * 2 ** -25, 'F16'), 2, 'and 1.5 of it to 2');
  });
});

for (const kernel of ['simd', 'js'] as const) {
describe(`exactness of apply and extract (${kernel} kernel)`, () => {
  // Each job starts its own worker threads, which read CHATVEC_KERNEL when they load the kernels.
  // The tensor larger than a chunk is left out of the JavaScript kernel's run: chunking is the
  // same for both kernels, and checking a million elements per job takes a while.
  const big = (l: (typeof LAYOUT)[number]) => l.shape.reduce((a, b) => a * b, 1) > CHUNK_ELEMENTS;
  before(() => {
    if (kernel === 'js') process.env.CHATVEC_KERNEL = 'js';
    else delete process.env.CHATVEC_KERNEL;
    writeFixture(kernel, kernel === 'js' ? LAYOUT.filter((l) => !big(l)) : LAYOUT);
  });
  after(() => delete process.env.CHATVEC_KERNEL);
  const sub = (name: string) => path.join(dir, `${kernel}-${name}`);

  it('the fixture exercises what it claims', () => {
    if (kernel === 'simd') assert.ok(fixture.some((t) => t.values.cp.length > CHUNK_ELEMENTS), 'one tensor spans more than one chunk');
    let nan = 0;
    let inf = 0;
    let sub = 0;
    let negZero = 0;
    let large = 0;
    for (const t of fixture) {
      for (const r of ROLES) {
        for (const v of t.values[r]) {
          if (Number.isNaN(v)) nan++;
          else if (!Number.isFinite(v)) inf++;
          else if (Object.is(v, -0)) negZero++;
          else if (v !== 0 && Math.abs(v) < 2 ** -126 && t.dtypes[r] !== 'F16') sub++;
          else if (Math.abs(v) > 1e29) large++;
        }
      }
    }
    assert.ok(nan > 100 && inf > 100 && sub > 100 && negZero > 100 && large > 100, JSON.stringify({ nan, inf, sub, negZero, large }));
  });

  let fused: StCheckpoint;
  it('fused apply, two chats with ratios 0.5 and −1.25, dtype of CP per tensor', async (t) => {
    const out = sub('fused');
    await runApply({ target: model.cp, base: model.base, chats: [model.chat1, model.chat2], ratios: [0.5, -1.25], out });
    fused = readCheckpoint(out);
    report(t, `${kernel}: fused [0.5, -1.25]`, checkFused(fused, ['chat1', 'chat2'], [0.5, -1.25], null));
  });

  it('extract (f32) is chat − base exactly, and extract → apply gives the fused bytes', async (t) => {
    const v1 = sub('v1');
    const v2 = sub('v2');
    await runExtract({ base: model.base, chat: model.chat1, out: v1 });
    await runExtract({ base: model.base, chat: model.chat2, out: v2 });
    const res = newResult();
    for (const [v, role] of [[v1, 'chat1'], [v2, 'chat2']] as const) {
      const ck = readCheckpoint(v);
      assert.deepEqual(ck.order, fixture.map((f) => f.name));
      for (const ft of fixture) {
        const o = ck.tensors.get(ft.name)!;
        assert.equal(o.dtype, 'F32');
        checkTensor(`${v}:${ft.name}`, o.bytes, 'F32', null, [{ ratio: 1, a: ft.values[role], b: ft.values.base }], res);
      }
    }
    report(t, `${kernel}: extract f32`, res);
    const twoStep = sub('twostep');
    await runApply({ target: model.cp, vectors: [v1, v2], ratios: [0.5, -1.25], out: twoStep });
    const ck = readCheckpoint(twoStep);
    sameTensorData(fused, ck, 'extract → apply vs fused');
    assert.notDeepEqual(ck.metadata, fused.metadata, 'the headers record different operations');
  });

  it('fused apply, one chat (the one-pass all-bf16 kernel where every dtype is bf16)', async (t) => {
    for (const [chat, ratio] of [['chat1', 0.5], ['chat2', -1.25]] as const) {
      const out = sub(`fused-one-${chat}`);
      await runApply({ target: model.cp, base: model.base, chats: [model[chat]], ratios: [ratio], out });
      report(t, `${kernel}: fused ${chat} [${ratio}]`, checkFused(readCheckpoint(out), [chat], [ratio], null));
    }
  });

  for (const [dtype, chats, ratios] of [
    ['BF16', ['chat1', 'chat2'], [1, 0.5]],
    ['F16', ['chat1'], [0.5]],
    ['F32', ['chat1', 'chat2'], [0.3, -0.7]],
  ] as const) {
    it(`fused apply with --dtype ${dtype.toLowerCase()}, ratios ${ratios.join(', ')}`, async (t) => {
      const out = sub(`fused-${dtype}`);
      // The fixture's large magnitudes overflow f16 on purpose (rounding at the range's edge is
      // part of what is checked), so non-finite results are allowed here.
      await runApply({ target: model.cp, base: model.base, chats: chats.map((c) => model[c]), ratios: [...ratios], out, dtype, allowNonFinite: true });
      report(t, `${kernel}: fused --dtype ${dtype} [${ratios.join(', ')}]`, checkFused(readCheckpoint(out), [...chats], [...ratios], dtype));
    });
  }

  it('extract --dtype bf16 rounds chat − base once; apply from it follows the same order', async (t) => {
    const vb = sub('vbf16');
    await runExtract({ base: model.base, chat: model.chat1, out: vb, dtype: 'BF16' });
    const ck = readCheckpoint(vb);
    const res = newResult();
    for (const ft of fixture) {
      const o = ck.tensors.get(ft.name)!;
      assert.equal(o.dtype, 'BF16');
      checkTensor(`${vb}:${ft.name}`, o.bytes, 'BF16', null, [{ ratio: 1, a: ft.values.chat1, b: ft.values.base }], res);
    }
    report(t, `${kernel}: extract bf16`, res);
    const out = sub('from-bf16-vector');
    await runApply({ target: model.cp, vectors: [vb], ratios: [0.5], out });
    const merged = readCheckpoint(out);
    const res2 = newResult();
    for (const ft of fixture) {
      const tau = decodeAll(ck.tensors.get(ft.name)!.bytes, 'BF16');
      checkTensor(ft.name, merged.tensors.get(ft.name)!.bytes, ft.dtypes.cp, ft.values.cp, [{ ratio: 0.5, a: tau, b: null }], res2, false);
    }
    report(t, `${kernel}: apply from a bf16 vector (exact order only)`, res2);
  });
});
}
