/**
 * Checks a merged output against a float64 reference computed here, element by element:
 * ref = cp + Σ rᵢ·(chatᵢ − base) in float64 (cp for --skip-embed tensors; the chat row for
 * special-token rows). Each output element must be within 1 ulp of the reference rounded to the
 * output dtype; the share that is bit-exact is reported. Also sums ‖τ‖² per layer group for the
 * demo's chart. Sequential and chunked: meant for the demo and for spot checks, not for speed.
 */
import { type Checkpoint, openCheckpoint } from '../checkpoint/checkpoint';
import { groupLabel, groupOrder, isVocabTensor } from '../checkpoint/layers';
import { PositionalFile } from '../io/positionalFile';
import { decodeToF32 } from '../numeric/convert';
import { f32BitsToBf16, f32BitsToF16, f32ToBits } from '../numeric/floatBits';
import { type FloatDtype, dtypeBytes, isFloatDtype } from '../safetensors/dtype';
import { type TensorLocation, readTensorElements } from '../safetensors/reader';
import { chunkRanges } from './chunking';

export interface VerifyInput {
  readonly out: string;
  readonly target: string;
  readonly base: string;
  readonly chats: readonly string[];
  readonly ratios: readonly number[];
  readonly skipEmbed: boolean;
  readonly specialTokens: readonly (readonly [number, number])[];
}

export interface VerifyResult {
  readonly elements: number;
  readonly bitExact: number;
  /** Elements more than 1 ulp (of the output dtype) away from the reference. */
  readonly beyondOneUlp: number;
  readonly worst: { tensor: string; index: number; got: number; want: number } | null;
  /** ‖chat − base‖ per layer group of the (first) chat model, in network order. */
  readonly tauNormByGroup: readonly { label: string; norm: number; relative: number }[];
}

/** Position of a finite or infinite value on the integer line of a 16/32-bit float format. */
function ordered(bits: number, width: 16 | 32): number {
  const sign = width === 16 ? 0x8000 : 0x80000000;
  return (bits & sign) !== 0 ? -(bits & (sign - 1)) : bits & (sign - 1);
}

function roundedBits(v: number, d: FloatDtype): number {
  const b = f32ToBits(v);
  return d === 'BF16' ? f32BitsToBf16(b) : d === 'F16' ? f32BitsToF16(b) : b;
}

export function verifyApply(inp: VerifyInput): VerifyResult {
  const out = openCheckpoint(inp.out);
  const cp = openCheckpoint(inp.target);
  const base = openCheckpoint(inp.base);
  const chats = inp.chats.map(openCheckpoint);
  const files = new Map<string, PositionalFile>();
  const reader = (p: string) => files.get(p) ?? (files.set(p, PositionalFile.openReadOnly(p)), files.get(p)!);
  const load = (t: TensorLocation, first: number, count: number): Float32Array => {
    const raw = new Uint8Array(count * dtypeBytes(t.dtype));
    readTensorElements(reader(t.file), t, first, count, raw);
    const v = new Float32Array(count);
    decodeToF32(t.dtype as FloatDtype, raw, v, count);
    return v;
  };
  let elements = 0;
  let bitExact = 0;
  let beyond = 0;
  let worst: VerifyResult['worst'] = null;
  let worstDist = 0;
  const tau = new Map<string, { order: number; sq: number; baseSq: number }>();
  try {
    for (const t of out.tensors) {
      const c = cp.byName.get(t.name)!;
      if (!isFloatDtype(t.dtype)) continue;
      const skip = inp.skipEmbed && isVocabTensor(c);
      const cols = t.shape[1] ?? 1;
      const special = isVocabTensor(c) ? new Map(inp.specialTokens.map(([k, v]) => [k, v])) : new Map<number, number>();
      const width = t.dtype === 'F32' ? 32 : 16;
      for (const [first, count] of chunkRanges(t.elementCount)) {
        const got = load(t, first, count);
        const vc = load(c, first, count);
        const terms = skip ? [] : chats.map((ch, i) => ({ r: inp.ratios[i]!, a: load(ch.byName.get(t.name)!, first, count), b: load(base.byName.get(t.name)!, first, count) }));
        if (!skip && terms.length) {
          const g = ch0Group(chats[0]!, t.name);
          const acc = tau.get(g.label) ?? { order: g.order, sq: 0, baseSq: 0 };
          for (let i = 0; i < count; i++) {
            const d = terms[0]!.a[i]! - terms[0]!.b[i]!;
            acc.sq += d * d;
            acc.baseSq += terms[0]!.b[i]! * terms[0]!.b[i]!;
          }
          tau.set(g.label, acc);
        }
        for (let i = 0; i < count; i++) {
          const j = first + i;
          let want = vc[i]!;
          for (const term of terms) want += term.r * (term.a[i]! - term.b[i]!);
          const row = Math.floor(j / cols);
          const srcRow = special.get(row);
          if (srcRow !== undefined) {
            want = load(chats[chats.length - 1]!.byName.get(t.name)!, srcRow * cols + (j % cols), 1)[0]!;
          }
          const gb = roundedBits(got[i]!, t.dtype as FloatDtype);
          const wb = roundedBits(want, t.dtype as FloatDtype);
          elements++;
          if (gb === wb || (Number.isNaN(got[i]!) && Number.isNaN(want))) {
            bitExact++;
            continue;
          }
          const dist = Math.abs(ordered(gb, width) - ordered(wb, width));
          if (dist > 1) beyond++;
          if (dist > worstDist) {
            worstDist = dist;
            worst = { tensor: t.name, index: j, got: got[i]!, want };
          }
        }
      }
    }
  } finally {
    for (const f of files.values()) f.close();
  }
  const tauNormByGroup = [...tau.entries()]
    .sort((a, b) => a[1].order - b[1].order)
    .map(([label, v]) => ({ label, norm: Math.sqrt(v.sq), relative: v.baseSq > 0 ? Math.sqrt(v.sq / v.baseSq) : NaN }));
  return { elements, bitExact, beyondOneUlp: beyond, worst, tauNormByGroup };
}

function ch0Group(c: Checkpoint, name: string): { label: string; order: number } {
  const g = c.byName.get(name)!.group;
  return { label: groupLabel(g), order: groupOrder(g) };
}
