/**
 * The "untrained special tokens" check that the Apply flow offers: the chat template's special
 * tokens (e.g. `<|eot_id|>`) whose rows in the target's input embeddings are near zero, because
 * the continually-pretrained model never saw them. Their rows can then be taken from the chat
 * model (`specialTokens` of ApplyOptions).
 *
 * Only tokenizer JSON is read here; the embedding rows' statistics come from the task host's
 * `rowStats` (no tensor bytes are read in the extension host).
 */
import { constants as fsConstants } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { InspectReport, RowStatsParams, RowStatsResult } from '../protocol/taskHost';

/** Where row statistics come from: the task host client. */
export interface RowStatsSource {
  rowStats(params: RowStatsParams): Promise<RowStatsResult>;
}

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

/**
 * A workspace file's text, or null unless it is a regular file of at most `maxBytes`. Opened
 * without blocking (a FIFO would hold a thread of the pool forever) and read up to the cap whatever
 * stat says (a link to /dev/zero or a /proc file reports size 0).
 */
async function readCapped(file: string, maxBytes: number): Promise<string | null> {
  let h: fs.FileHandle | undefined;
  try {
    h = await fs.open(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
    const st = await h.stat();
    if (!st.isFile() || st.size > maxBytes) return null;
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const want = Math.min(total === 0 ? st.size + 1 : 64 * 1024, maxBytes + 1 - total);
      const { bytesRead, buffer } = await h.read(Buffer.alloc(want), 0, want, null);
      if (bytesRead === 0) break;
      chunks.push(buffer.subarray(0, bytesRead));
      total += bytesRead;
      if (total > maxBytes) return null;
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } catch {
    return null;
  } finally {
    await h?.close().catch(() => undefined);
  }
}

async function readJson(file: string, maxBytes = 4 * 2 ** 20): Promise<Record<string, unknown> | null> {
  const text = await readCapped(file, maxBytes);
  try {
    const v = text === null ? null : (JSON.parse(text) as unknown);
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
    const jinja = await readCapped(path.join(folder, 'chat_template.jinja'), 4 * 2 ** 20);
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
export async function untrainedSpecialTokens(chatFolder: string, target: InspectReport, host: RowStatsSource): Promise<SpecialTokenRow[]> {
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
  if (!['F16', 'BF16', 'F32', 'F64'].includes(emb.dtype)) return [];
  const stats = await host.rowStats({ path: target.path, tensor: emb.name, rows: [...pairs.map((p) => p.targetId), ...refs] });
  const rms = stats.rows.map((r) => r.norm / Math.sqrt(cols));
  const refRms = median(rms.slice(pairs.length));
  if (!(refRms > 0)) return [];
  return pairs.map((p, i) => ({ ...p, rms: rms[i]!, referenceRms: refRms })).filter((r) => r.rms < NEAR_ZERO * refRms);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
}
