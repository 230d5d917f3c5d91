/**
 * The "untrained special tokens" check that the Apply flow offers: the chat template's special
 * tokens (e.g. `<|eot_id|>`) whose rows in the target's input embeddings are near zero, because
 * the continually-pretrained model never saw them. Their rows can then be taken from the chat
 * model (`specialTokens` of ApplyOptions).
 *
 * Why this reads bytes in the extension host: it needs a few dozen embedding rows (a few KB to a
 * few MB, bounded by MAX_ROWS, independent of model size), and the task host's protocol has no
 * request for row statistics yet. Everything else about the checkpoints comes from `inspect`.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { InspectReport } from '../protocol/taskHost';

export interface SpecialTokenRow {
  readonly token: string;
  /** Id in the target (continually-pretrained) vocabulary. */
  readonly targetId: number;
  /** Id in the chat model's vocabulary. */
  readonly chatId: number;
  /** RMS of the target's embedding row, and the median RMS of ordinary rows for scale. */
  readonly rms: number;
  readonly referenceRms: number;
}

/** Rows below this fraction of an ordinary row's RMS count as untrained. */
const NEAR_ZERO = 0.02;
const REFERENCE_ROWS = 8;
const MAX_ROWS = 64;
/** tokenizer.json is read only when small; tokenizer_config.json usually has the added tokens. */
const MAX_TOKENIZER_JSON = 16 * 2 ** 20;

interface TokenizerInfo {
  readonly chatTemplate: string | null;
  /** Added tokens: content → id, with their `special` flag. */
  readonly added: Map<string, { id: number; special: boolean }>;
}

async function readJson(file: string, maxBytes = 4 * 2 ** 20): Promise<Record<string, unknown> | null> {
  try {
    const st = await fs.stat(file);
    if (!st.isFile() || st.size > maxBytes) return null;
    const v = JSON.parse(await fs.readFile(file, 'utf8')) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export async function readTokenizerInfo(folder: string): Promise<TokenizerInfo> {
  const added = new Map<string, { id: number; special: boolean }>();
  const cfg = await readJson(path.join(folder, 'tokenizer_config.json'));
  let chatTemplate: string | null = null;
  const t = cfg?.chat_template;
  if (typeof t === 'string') chatTemplate = t;
  else if (Array.isArray(t)) chatTemplate = t.map((x: { template?: unknown }) => (typeof x?.template === 'string' ? x.template : '')).join('\n');
  const dec = cfg?.added_tokens_decoder;
  if (dec && typeof dec === 'object') {
    for (const [id, v] of Object.entries(dec as Record<string, { content?: unknown; special?: unknown }>)) {
      if (typeof v?.content === 'string' && Number.isInteger(Number(id))) added.set(v.content, { id: Number(id), special: v.special !== false });
    }
  }
  if (!chatTemplate) {
    const jinja = await fs.readFile(path.join(folder, 'chat_template.jinja'), 'utf8').catch(() => null);
    if (jinja) chatTemplate = jinja;
  }
  const tj = await readJson(path.join(folder, 'tokenizer.json'), MAX_TOKENIZER_JSON);
  if (Array.isArray(tj?.added_tokens)) {
    for (const a of tj.added_tokens as { id?: unknown; content?: unknown; special?: unknown }[]) {
      if (typeof a?.content === 'string' && typeof a.id === 'number' && !added.has(a.content)) added.set(a.content, { id: a.id, special: a.special !== false });
    }
  }
  return { chatTemplate, added };
}

/** The chat template's special tokens (those it mentions literally), with their chat ids. */
export function templateSpecials(info: TokenizerInfo): { token: string; id: number }[] {
  if (!info.chatTemplate) return [];
  const out: { token: string; id: number }[] = [];
  for (const [token, v] of info.added) if (v.special && token.length > 1 && info.chatTemplate.includes(token)) out.push({ token, id: v.id });
  return out.sort((a, b) => a.id - b.id);
}

const EMBEDDING = /(?:^|\.)(?:embed_tokens|wte|word_embeddings|embed_in|tok_embeddings)\.weight$/;

/**
 * Finds the chat template's special tokens whose target embedding rows are near zero.
 * Returns [] when anything needed is missing (no template, no embedding, unknown dtype).
 */
export async function untrainedSpecialTokens(chatFolder: string, target: InspectReport): Promise<SpecialTokenRow[]> {
  const targetFolder = target.kind === 'folder' ? target.path : path.dirname(target.path);
  const [chat, tgt] = await Promise.all([readTokenizerInfo(chatFolder), readTokenizerInfo(targetFolder)]);
  const specials = templateSpecials(chat);
  if (!specials.length) return [];
  const emb = target.tensors.find((t) => EMBEDDING.test(t.name) && t.shape.length === 2);
  if (!emb) return [];
  const [rows, cols] = emb.shape as [number, number];
  const pairs = specials
    .map((s) => ({ token: s.token, chatId: s.id, targetId: tgt.added.get(s.token)?.id }))
    .filter((p): p is { token: string; chatId: number; targetId: number } => p.targetId !== undefined && p.targetId < rows)
    .slice(0, MAX_ROWS - REFERENCE_ROWS);
  if (!pairs.length) return [];
  const taken = new Set(pairs.map((p) => p.targetId));
  const refs: number[] = [];
  for (let i = 1; refs.length < REFERENCE_ROWS && i <= REFERENCE_ROWS * 4; i++) {
    const id = Math.floor((i * rows) / (REFERENCE_ROWS * 4 + 1));
    if (!taken.has(id) && ![...tgt.added.values()].some((a) => a.id === id)) refs.push(id);
  }
  const file = path.join(targetFolder, emb.file);
  const rms = await rowRms(file, emb.dtype, emb.begin, cols, [...pairs.map((p) => p.targetId), ...refs]);
  if (!rms) return [];
  const refRms = median(rms.slice(pairs.length));
  if (!(refRms > 0)) return [];
  return pairs.map((p, i) => ({ ...p, rms: rms[i]!, referenceRms: refRms })).filter((r) => r.rms < NEAR_ZERO * refRms);
}

async function rowRms(file: string, dtype: string, begin: number, cols: number, ids: number[]): Promise<number[] | null> {
  const size = dtype === 'F32' ? 4 : dtype === 'BF16' || dtype === 'F16' ? 2 : 0;
  if (!size) return null;
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(cols * size);
    const out: number[] = [];
    for (const id of ids) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, begin + id * cols * size);
      if (bytesRead !== buf.length) return null;
      let sum = 0;
      for (let j = 0; j < cols; j++) {
        const v = dtype === 'F32' ? buf.readFloatLE(j * 4) : dtype === 'BF16' ? bf16(buf.readUInt16LE(j * 2)) : f16(buf.readUInt16LE(j * 2));
        if (Number.isFinite(v)) sum += v * v;
      }
      out.push(Math.sqrt(sum / cols));
    }
    return out;
  } finally {
    await fh.close();
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function bf16(bits: number): number {
  u32[0] = bits << 16;
  return f32[0]!;
}
function f16(bits: number): number {
  const s = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
}
