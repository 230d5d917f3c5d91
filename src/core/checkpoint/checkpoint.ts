/**
 * Checkpoints: a Hugging Face folder (config.json, model.safetensors or sharded
 * model-0000i-of-0000N.safetensors with model.safetensors.index.json, tokenizer files) or a single
 * .safetensors file. Opening reads headers only and builds a catalogue name → (file, position,
 * dtype, shape). Only the index's weight_map and the shard headers are trusted (`total_size` is
 * often wrong in the wild); the two must agree exactly.
 */
import { ChatVecError } from '../errors';
import { type FileIdentity, entryKind, listDir, realPath } from '../io/files';
import { readJsonObject } from '../io/sideFile';
import { resolveModelRef } from '../hub/resolveModelRef';
import { belongsToCheckpoint } from '../io/sideFile';
import { basename, dirname, isAbsolute, join } from '../io/paths';
import { type Dtype } from '../safetensors/dtype';
import { type SafetensorsFileInfo, type TensorLocation, readSafetensorsHeader } from '../safetensors/reader';
import { aliasOf, architectureNamed } from './architectures';
import { type TensorGroup, groupTensors } from './layers';
import type { AdapterAddend } from './tensorAddend';

export interface CatalogueEntry extends TensorLocation {
  readonly name: string;
  /** Index into Checkpoint.shards. */
  readonly shard: number;
  readonly group: TensorGroup;
  /** Set on the tensors of a model opened with an adapter merged in (lora/adaptedModel.ts). */
  readonly adapter?: AdapterAddend;
}

export interface ShardInfo extends FileIdentity {
  /** Name relative to the checkpoint folder. */
  readonly fileName: string;
  readonly headerLength: number;
  readonly metadata: Readonly<Record<string, string>> | null;
  readonly tensorCount: number;
}

export interface Checkpoint {
  /** Absolute path as given: a folder or a .safetensors file. */
  readonly path: string;
  readonly kind: 'folder' | 'file';
  /** The folder holding config and tokenizer files (the file's folder for a single file). */
  readonly folder: string;
  readonly shards: readonly ShardInfo[];
  /** Tensors in file order: shard by shard, each by data offset. */
  readonly tensors: readonly CatalogueEntry[];
  /** Name → entry; also under a family's alias spelling (GPT-2's `h.0.x` for `transformer.h.0.x`). */
  readonly byName: ReadonlyMap<string, CatalogueEntry>;
  /** config.json, when the folder has one. */
  readonly config: Readonly<Record<string, unknown>> | null;
  /** config.architectures[0] or model_type, when known. */
  readonly architecture: string | null;
  /** Which family table the grouping used ("llama", "gpt2", …; "generic": name patterns). */
  readonly family: string;
  /** Who chose the family: config.json, the tensor names, or neither (generic patterns). */
  readonly familyChosenBy: 'config' | 'names' | 'generic';
  /** Decoder layers of the language model (config's count where stated; towers and MTP excluded). */
  readonly layerCount: number;
  /** The dotted config.json key holding the layer count (`text_config.num_hidden_layers`, …). */
  readonly layerCountKey: string;
  readonly indexFile: string | null;
}

const PICKLE_EXT = /\.(bin|pt|pth|ckpt|pkl)$/i;

function unsupportedPickle(p: string): ChatVecError {
  return new ChatVecError(
    'Unsupported',
    `${p}: pickled PyTorch weights are never loaded (unpickling can run arbitrary code); convert the checkpoint to safetensors first (e.g. transformers: model.save_pretrained(dir, safe_serialization=True))`,
  );
}

/**
 * Opens a checkpoint folder or a single .safetensors file, reading headers only. `path` may also be
 * a Hugging Face id (`org/name[@revision]`) of a model in the hub cache when no local path has that
 * name (hub/resolveModelRef.ts); the checkpoint's path is then the cache snapshot.
 * @throws ChatVecError BadCheckpoint (names the file and the rule; an id not in the cache or an
 *   incomplete snapshot), Unsupported (.bin/.pt), Io
 */
export function openCheckpoint(path: string): Checkpoint {
  const abs = resolveModelRef(path).path;
  const kind = entryKind(abs);
  if (kind === 'missing') throw new ChatVecError('BadCheckpoint', `${abs}: no such file or folder`);
  if (kind === 'file') {
    if (PICKLE_EXT.test(abs)) throw unsupportedPickle(abs);
    if (!abs.endsWith('.safetensors')) throw new ChatVecError('BadCheckpoint', `${abs}: not a .safetensors file or a checkpoint folder`);
    const folder = dirname(abs);
    return build(abs, 'file', folder, [[basename(abs), readSafetensorsHeader(abs)]], null, null);
  }
  if (kind !== 'dir') throw new ChatVecError('BadCheckpoint', `${abs}: not a file or folder`);

  const names = listDir(abs);
  const configPath = join(abs, 'config.json');
  const config = names.includes('config.json') ? readJsonObject(configPath) : null;
  const indexName = names.includes('model.safetensors.index.json')
    ? 'model.safetensors.index.json'
    : singleOrNone(names.filter((n) => n.endsWith('.safetensors.index.json')));
  if (indexName) {
    const indexPath = join(abs, indexName);
    const { shardNames, weightMap } = readIndex(indexPath, abs);
    const shards = shardNames.map((n) => [n, readSafetensorsHeader(join(abs, n))] as [string, SafetensorsFileInfo]);
    checkIndexAgainstShards(indexPath, weightMap, shards);
    return build(abs, 'folder', abs, shards, config, indexPath);
  }
  const st = names.filter((n) => n.endsWith('.safetensors') && entryKind(join(abs, n)) === 'file');
  const chosen = st.includes('model.safetensors') ? ['model.safetensors'] : st;
  if (chosen.length === 0) {
    const pickled = names.find((n) => PICKLE_EXT.test(n));
    if (pickled) throw unsupportedPickle(join(abs, pickled));
    throw new ChatVecError('BadCheckpoint', `${abs}: no .safetensors files in this folder`);
  }
  return build(abs, 'folder', abs, chosen.map((n) => [n, readSafetensorsHeader(join(abs, n))]), config, null);
}

function singleOrNone(xs: string[]): string | null {
  return xs.length === 1 ? xs[0]! : null;
}

/**
 * Reads model.safetensors.index.json: weight_map must map tensor names to shard file names that
 * stay inside the folder (no absolute paths, no `..`, no links that leave it).
 */
function readIndex(indexPath: string, folder: string): { shardNames: string[]; weightMap: Map<string, string> } {
  const idx = readJsonObject(indexPath);
  const wm = idx.weight_map;
  if (wm === null || typeof wm !== 'object' || Array.isArray(wm)) {
    throw new ChatVecError('BadCheckpoint', `${indexPath}: "weight_map" must be an object of tensor name → shard file`);
  }
  const weightMap = new Map<string, string>();
  const shardSet = new Set<string>();
  const realFolder = realPath(folder);
  for (const [tensor, shard] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof shard !== 'string' || shard.length === 0) {
      throw new ChatVecError('BadCheckpoint', `${indexPath}: weight_map["${tensor}"] is not a file name`);
    }
    if (!shardSet.has(shard)) {
      checkShardName(indexPath, folder, realFolder, shard);
      shardSet.add(shard);
    }
    weightMap.set(tensor, shard);
  }
  if (shardSet.size === 0) throw new ChatVecError('BadCheckpoint', `${indexPath}: weight_map is empty`);
  const shardNames = [...shardSet].sort();
  return { shardNames, weightMap };
}

function checkShardName(indexPath: string, folder: string, realFolder: string, shard: string): void {
  const parts = shard.split(/[\\/]/);
  if (isAbsolute(shard) || /^[a-zA-Z]:/.test(shard) || parts.includes('..')) {
    throw new ChatVecError('BadCheckpoint', `${indexPath}: shard "${shard}" points outside the checkpoint folder`);
  }
  const p = join(folder, shard);
  const k = entryKind(p);
  if (k === 'missing') throw new ChatVecError('BadCheckpoint', `${indexPath}: shard "${shard}" is listed but ${p} does not exist`);
  if (k !== 'file') throw new ChatVecError('BadCheckpoint', `${indexPath}: shard "${shard}" is not a regular file`);
  const real = realPath(p);
  if (!belongsToCheckpoint(realFolder, real)) {
    throw new ChatVecError('BadCheckpoint', `${indexPath}: shard "${shard}" is a link that leads outside the checkpoint folder (${real})`);
  }
}

function checkIndexAgainstShards(indexPath: string, weightMap: Map<string, string>, shards: [string, SafetensorsFileInfo][]): void {
  const inShard = new Map<string, string>();
  for (const [name, info] of shards) for (const t of info.tensors) inShard.set(t.name, name);
  for (const [tensor, shard] of weightMap) {
    const actual = inShard.get(tensor);
    if (actual === undefined) {
      throw new ChatVecError('BadCheckpoint', `${indexPath}: tensor "${tensor}" is mapped to ${shard}, but that shard has no such tensor`);
    }
    if (actual !== shard) {
      throw new ChatVecError('BadCheckpoint', `${indexPath}: tensor "${tensor}" is mapped to ${shard} but stored in ${actual}`);
    }
  }
  for (const [tensor, shard] of inShard) {
    if (!weightMap.has(tensor)) {
      throw new ChatVecError('BadCheckpoint', `${indexPath}: tensor "${tensor}" in ${shard} is missing from weight_map`);
    }
  }
}

function build(
  path: string,
  kind: 'folder' | 'file',
  folder: string,
  shards: [string, SafetensorsFileInfo][],
  config: Record<string, unknown> | null,
  indexFile: string | null,
): Checkpoint {
  const tensors: Omit<CatalogueEntry, 'group'>[] = [];
  const seen = new Map<string, string>();
  shards.forEach(([fileName, info], shard) => {
    for (const t of info.tensors) {
      const prev = seen.get(t.name);
      if (prev !== undefined) {
        throw new ChatVecError('BadCheckpoint', `${folder}: tensor "${t.name}" is stored twice (${prev} and ${fileName})`);
      }
      seen.set(t.name, fileName);
      tensors.push({
        name: t.name,
        shard,
        file: info.path,
        dtype: t.dtype,
        shape: t.shape,
        elementCount: t.elementCount,
        position: info.dataStart + t.begin,
        byteLength: t.end - t.begin,
      });
    }
  });
  const grouping = groupTensors(tensors.map((t) => t.name), config);
  const entries: CatalogueEntry[] = tensors.map((t) => ({ ...t, group: grouping.groups.get(t.name)! }));
  return {
    path,
    kind,
    folder,
    shards: shards.map(([fileName, info]) => ({
      path: info.path,
      fileName,
      size: info.size,
      mtimeMs: info.mtimeMs,
      headerLength: info.headerLength,
      metadata: info.metadata,
      tensorCount: info.tensors.length,
    })),
    tensors: entries,
    byName: namesWithAliases(entries, grouping.family),
    config,
    architecture: architectureOf(config),
    family: grouping.family,
    familyChosenBy: grouping.chosenBy,
    layerCount: grouping.layerCount,
    layerCountKey: grouping.layerCountKey,
    indexFile,
  };
}

/**
 * Name → entry, also under the family's alias spelling where no tensor has that name, so that
 * `h.0.x` in one checkpoint finds `transformer.h.0.x` in another (GPT-2's two layouts).
 */
function namesWithAliases(entries: readonly CatalogueEntry[], family: string): Map<string, CatalogueEntry> {
  const byName = new Map(entries.map((e) => [e.name, e]));
  const arch = architectureNamed(family);
  if (arch?.aliasPrefix === undefined) return byName;
  for (const e of entries) {
    const alias = aliasOf(arch, e.name);
    if (alias !== null && !byName.has(alias)) byName.set(alias, e);
  }
  return byName;
}

function architectureOf(config: Record<string, unknown> | null): string | null {
  if (!config) return null;
  const a = config.architectures;
  if (Array.isArray(a) && typeof a[0] === 'string') return a[0];
  return typeof config.model_type === 'string' ? config.model_type : null;
}

export interface CheckpointSummary {
  readonly parameterCount: number;
  /** Bytes of tensor data (excluding headers). */
  readonly tensorBytes: number;
  /** Bytes on disk of all shards. */
  readonly fileBytes: number;
  /** Element count per dtype. */
  readonly dtypes: Readonly<Partial<Record<Dtype, number>>>;
  readonly layerCount: number;
  readonly vocabSize: number | null;
}

/** Totals for display (parameter count, bytes, dtypes, layers, vocabulary). */
export function summarize(c: Checkpoint): CheckpointSummary {
  let params = 0;
  let bytes = 0;
  const dtypes: Partial<Record<Dtype, number>> = {};
  let vocab: number | null = null;
  for (const t of c.tensors) {
    params += t.elementCount;
    bytes += t.byteLength;
    dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + t.elementCount;
    if (t.group.role === 'embedding' && t.group.vocab && vocab === null && t.shape.length === 2) {
      vocab = t.shape[0]!;
    }
  }
  return {
    parameterCount: params,
    tensorBytes: bytes,
    fileBytes: c.shards.reduce((a, s) => a + s.size, 0),
    dtypes,
    layerCount: c.layerCount,
    vocabSize: vocab,
  };
}

/**
 * The tensor of `c` whose rows are the rows of `t` (a tensor of another checkpoint): the one of
 * the same name, or for an LM head, `c`'s token embedding when `c` ties its head to it (has no
 * head of its own). Undefined when `c` has neither.
 */
export function rowsCounterpart(c: Checkpoint, t: CatalogueEntry): CatalogueEntry | undefined {
  const same = c.byName.get(t.name);
  if (same || t.group.role !== 'lm_head' || c.tensors.some((u) => u.group.role === 'lm_head')) return same;
  return c.tensors.find((u) => u.group.role === 'embedding' && u.group.vocab === true && u.name.endsWith('.weight'));
}

/** The identity of every input file (path, size, mtime): a cache key that changes with any shard. */
export function checkpointIdentity(c: Checkpoint): FileIdentity[] {
  return c.shards.map((s) => ({ path: s.path, size: s.size, mtimeMs: s.mtimeMs }));
}
