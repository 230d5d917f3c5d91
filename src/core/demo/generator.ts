/**
 * The demo trio, generated deterministically from a seed (the same generator serves the README's
 * demo, the tests and the benchmark):
 * - base: LLaMA-shaped random weights;
 * - chat: base + deltas whose size grows with depth (so layer diffs show a clear pattern), with
 *   trained rows for the chat template's special tokens and a chat template;
 * - cp ("continually pretrained"): base + other, depth-independent deltas and an extended
 *   vocabulary; its special-token rows stay untrained (near zero), the classic `<|eot|>` case.
 */
import { ChatVecError } from '../errors';
import { AtomicOutputDir } from '../io/atomicOutput';
import { TOOL_VERSION } from '../version';
import { entryKind } from '../io/files';
import { readSmallText } from '../io/sideFile';
import { writeSmallFileSync } from '../io/outputFile';
import { join } from '../io/paths';
import { classifyTensors } from '../checkpoint/layers';
import { encodeFromF32 } from '../numeric/convert';
import { type TensorSpec, createPlannedFile, planCheckpoint } from '../safetensors/writer';
import { type DemoRole, type DemoShape, type PresetName, PRESETS, llamaTensorSpecs } from './presets';
import { BLOCK, hashString, uniformRange } from '../numeric/random';
import { demoTokenizerFiles, specialTokenIds } from './tokenizer';

export const GENERATOR_VERSION = 2;

/** Relative size of the chat fine-tune's deltas in layer i of L: grows from 1 % to 4 %. */
export function chatDeltaScale(layer: number, layers: number): number {
  return 0.01 * (1 + (3 * layer) / Math.max(1, layers - 1));
}
const CP_DELTA = 0.015;
const EMBED_DELTA = 0.005;

interface TensorContext {
  readonly spec: TensorSpec;
  readonly role: DemoRole;
  readonly shape: DemoShape;
  readonly seed: number;
  readonly layer: number | null;
  readonly kind: 'matrix' | 'norm' | 'embedding';
}

function baseScale(c: TensorContext): number {
  if (c.kind === 'norm') return 0.1;
  const fanIn = c.spec.shape[1] ?? 1;
  return 1 / Math.sqrt(fanIn);
}

/**
 * Fills out[0..count) with the float values of elements [first, first+count) of one tensor,
 * already rounded through bf16 as stored. Pure function of (seed, role, name, element index).
 */
export function demoValues(c: TensorContext, first: number, count: number, out: Float32Array, scratch: Float64Array): void {
  const name = c.spec.name;
  const sBase = hashString(`${c.seed}:base:${name}`);
  const scale = baseScale(c);
  const cols = c.spec.shape[1] ?? 1;
  uniformRange(sBase, first, count, scratch);
  const offset = c.kind === 'norm' ? 1 : 0;
  const specials = c.kind === 'embedding' ? specialTokenIds(c.shape.vocab) : [];
  const lo = specials.length ? specials[0]! * cols : Infinity;
  const hi = specials.length ? (specials[specials.length - 1]! + 1) * cols : -Infinity;
  const baseRows = c.shape.vocab * cols;
  for (let i = 0; i < count; i++) {
    const j = first + i;
    let v = offset + scale * scratch[i]!;
    if (j >= lo && j < hi) v *= 1e-4; // untrained special-token rows in base (and so in cp)
    out[i] = bf16Round(v);
    if (c.kind === 'embedding' && j >= baseRows) out[i] = 0; // rows only cp has: filled below
  }
  if (c.role === 'base') return;

  const sDelta = hashString(`${c.seed}:${c.role}:${name}`);
  uniformRange(sDelta, first, count, scratch);
  let rel: number;
  if (c.role === 'chat') rel = c.layer === null ? (c.kind === 'norm' ? chatDeltaScale(c.shape.layers, c.shape.layers) : EMBED_DELTA) : chatDeltaScale(c.layer, c.shape.layers);
  else rel = c.layer === null ? EMBED_DELTA : CP_DELTA;
  const d = rel * scale;
  for (let i = 0; i < count; i++) {
    const j = first + i;
    let v = out[i]! + d * scratch[i]!;
    if (c.role === 'chat' && j >= lo && j < hi) v = scale * scratch[i]!; // chat trained its special tokens
    if (c.role === 'cp' && j >= lo && j < hi) v = out[i]!; // cp never saw them
    if (c.role === 'cp' && j >= baseRows) v = scale * scratch[i]!; // new vocabulary rows
    out[i] = bf16Round(v);
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function bf16Round(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  u32[0] = ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) << 16;
  return f32[0]!;
}

function contexts(role: DemoRole, shape: DemoShape, seed: number): TensorContext[] {
  const vocab = role === 'cp' ? shape.vocab + shape.cpExtraVocab : shape.vocab;
  const specs = llamaTensorSpecs(shape, vocab);
  const groups = classifyTensors(specs.map((s) => s.name));
  return specs.map((spec) => {
    const g = groups.get(spec.name)!;
    const kind = spec.shape.length === 1 ? 'norm' : g.role === 'embedding' || g.role === 'lm_head' ? 'embedding' : 'matrix';
    return { spec, role, shape, seed, layer: g.role === 'layer' ? g.layer! : null, kind };
  });
}

/** Optional hooks of {@link writeDemoModel}. */
export interface DemoWriteHooks {
  /** Names the temporary folder (AtomicOutputDir.begin's `tag`), so a caller can remove it after stopping the writer. */
  readonly tempTag?: string;
  /** Called after each tensor with the tensor-data bytes written so far and in all (bytes). */
  readonly onTensor?: (doneBytes: number, totalBytes: number) => void;
}

/** Bytes of tensor data (BF16) of one demo model. */
export function demoModelBytes(role: DemoRole, preset: PresetName): number {
  return contexts(role, PRESETS[preset], 0).reduce((n, c) => n + 2 * c.spec.shape.reduce((a, b) => a * b, 1), 0);
}

/**
 * Writes one demo model folder (atomically) with weights, config and tokenizer files.
 * @throws ChatVecError OutputExists when `dir` exists and overwrite is false; Io
 */
export function writeDemoModel(dir: string, role: DemoRole, preset: PresetName, seed: number, overwrite = false, hooks: DemoWriteHooks = {}): void {
  const shape = PRESETS[preset];
  const ctxs = contexts(role, shape, seed);
  const plan = planCheckpoint(ctxs.map((c) => c.spec), shape.maxShardBytes, { chatvec_demo: `${preset}/${role}/seed=${seed}` });
  const totalBytes = hooks.onTensor ? demoModelBytes(role, preset) : 0;
  let doneBytes = 0;
  const out = AtomicOutputDir.begin(dir, { overwrite, tag: hooks.tempTag, writtenBy: `chatvec ${TOOL_VERSION} demo` });
  try {
    const chunk = 4 * BLOCK;
    const vals = new Float32Array(chunk);
    const scratch = new Float64Array(chunk);
    const bytes = new Uint8Array(chunk * 2);
    const byName = new Map(ctxs.map((c) => [c.spec.name, c]));
    for (const file of plan.files) {
      const f = createPlannedFile(out.file(file.fileName), file);
      try {
        for (const t of file.tensors) {
          const c = byName.get(t.name)!;
          for (let first = 0; first < t.elementCount; first += chunk) {
            const n = Math.min(chunk, t.elementCount - first);
            demoValues(c, first, n, vals, scratch);
            encodeFromF32('BF16', vals, bytes, n);
            f.writeAtSync(bytes.subarray(0, n * 2), t.position + first * 2);
          }
          doneBytes += t.elementCount * 2;
          hooks.onTensor?.(doneBytes, totalBytes);
        }
        f.syncAndClose();
      } finally {
        f.close();
      }
    }
    if (plan.index) writeSmallFileSync(out.file('model.safetensors.index.json'), JSON.stringify(plan.index, null, 2) + '\n');
    const vocab = role === 'cp' ? shape.vocab + shape.cpExtraVocab : shape.vocab;
    for (const [name, content] of Object.entries(demoTokenizerFiles(role, shape, vocab))) writeSmallFileSync(out.file(name), content);
    writeSmallFileSync(out.file('config.json'), JSON.stringify(llamaConfig(shape, vocab), null, 2) + '\n');
    out.commit();
  } catch (e) {
    out.abort();
    throw e;
  }
}

function llamaConfig(s: DemoShape, vocab: number): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    vocab_size: vocab,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    hidden_act: 'silu',
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'bfloat16',
  };
}

export interface DemoTrio {
  readonly root: string;
  readonly base: string;
  readonly chat: string;
  readonly cp: string;
  /** True when the models were already there (same preset, seed and generator version). */
  readonly reused: boolean;
}

/**
 * Generates base, chat and cp under `root` (or reuses them when a marker says they match).
 * @throws ChatVecError OutputExists when root holds something else and overwrite is false
 */
export function generateDemoTrio(root: string, preset: PresetName, seed = 42, onModel?: (role: DemoRole) => void): DemoTrio {
  const layout = demoTrioLayout(root, preset, seed);
  if (layout.complete()) return { root, ...layout.paths, reused: true };
  for (const role of DEMO_ROLES) {
    onModel?.(role);
    writeDemoModel(layout.paths[role], role, preset, seed, true);
  }
  layout.markComplete();
  return { root, ...layout.paths, reused: false };
}

/** The roles in the order the trio is written. */
export const DEMO_ROLES: readonly DemoRole[] = ['base', 'chat', 'cp'];

/** Where a trio goes, and its reuse marker (shared by generateDemoTrio and the task host's job). */
export interface DemoTrioLayout {
  readonly paths: Readonly<Record<DemoRole, string>>;
  /** The marker file (`.chatvec-demo-PRESET.json` in root). */
  readonly marker: string;
  /** True when the marker matches (preset, seed, generator version) and all three models exist. */
  complete(): boolean;
  /** Writes the marker once all three models are in place. */
  markComplete(): void;
}

/** The layout of a trio under `root`. @throws ChatVecError InvalidArgument for an unknown preset */
export function demoTrioLayout(root: string, preset: PresetName, seed: number): DemoTrioLayout {
  if (!(preset in PRESETS)) throw new ChatVecError('InvalidArgument', `unknown preset "${preset}" (tiny, small or 1b)`);
  const marker = join(root, `.chatvec-demo-${preset}.json`);
  const stamp = JSON.stringify({ preset, seed, generator: GENERATOR_VERSION });
  const paths = { base: join(root, `${preset}-base`), chat: join(root, `${preset}-chat`), cp: join(root, `${preset}-cp`) };
  return {
    paths,
    marker,
    complete: () => entryKind(marker) === 'file' && readSmallText(marker, 'marker').trim() === stamp && Object.values(paths).every((p) => entryKind(join(p, 'config.json')) === 'file'),
    markComplete: () => writeSmallFileSync(marker, stamp + '\n'),
  };
}
