/**
 * The GGUF cache of `chatvec chat` / `chatvec eval`: a checkpoint folder is converted once per
 * content into `<cache>/gguf/<folder name>-<key>.<type>.gguf`. The key hashes what the GGUF is
 * made of: every shard's identity (name, size, mtime) and safetensors header bytes, the side
 * files the export reads (config, tokenizer files, chat template), the weight type, and the
 * tool's version (a newer exporter may write different bytes). Any change gives a new key, so a
 * stale file is never used; old files are left behind (delete the folder to reclaim the space).
 */
import type { Checkpoint } from '../checkpoint/checkpoint';
import type { GgufFileType } from '../gguf/llama';
import { stableHash } from '../io/hash';
import { basename, join } from '../io/paths';
import { PositionalFile } from '../io/positionalFile';
import { readSmallTextOrNull } from '../io/sideFile';
import { TOOL_VERSION } from '../version';

/** Bumped when the cache's naming or what goes into the key changes. */
const GGUF_CACHE_VERSION = 1;

/** The side files runGgufExport reads (core/gguf/tokenizer.ts, llama.ts). */
const SIDE_FILES: readonly (readonly [string, 'json' | 'template'])[] = [
  ['config.json', 'json'],
  ['tokenizer.json', 'json'],
  ['tokenizer_config.json', 'json'],
  ['chat_template.jinja', 'template'],
];

/**
 * The cache key of `c` exported as `type`: SHA-256 hex of the inputs listed above.
 * @throws ChatVecError Io when a shard's header cannot be read
 */
export function ggufCacheKey(c: Checkpoint, type: GgufFileType): string {
  const shards = c.shards.map((s) => {
    const header = new Uint8Array(8 + s.headerLength);
    const f = PositionalFile.openReadOnly(s.path);
    try {
      f.readIntoSync(header, 0);
    } finally {
      f.close();
    }
    return { name: s.fileName, size: s.size, mtimeMs: s.mtimeMs, header: stableHash(Buffer.from(header).toString('base64')) };
  });
  const sides = Object.fromEntries(SIDE_FILES.map(([name, kind]) => {
    const text = readSmallTextOrNull(join(c.folder, name), kind);
    return [name, text === null ? null : stableHash(text)];
  }));
  return stableHash({ format: 'chatvec-gguf-cache', version: GGUF_CACHE_VERSION, tool: TOOL_VERSION, type, shards, sides });
}

/** Where the GGUF of `c` with `key` lives inside `cacheDir` (the folder name keeps it findable). */
export function ggufCacheFile(cacheDir: string, c: Checkpoint, key: string, type: GgufFileType): string {
  const name = basename(c.folder).replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60) || 'model';
  return join(cacheDir, `${name}-${key.slice(0, 16)}.${type.toLowerCase()}.gguf`);
}
