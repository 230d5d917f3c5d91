/**
 * MODEL of `chatvec chat` / `chatvec eval`: a `.gguf` file, used as it is, or a checkpoint
 * (folder or .safetensors file) exported to GGUF once per content into the cache (ggufCache.ts)
 * and reused from there on.
 */
import { openCheckpoint } from '../checkpoint/checkpoint';
import { ChatVecError, toChatVecError } from '../errors';
import { runGgufExport } from '../gguf/export';
import type { GgufFileType } from '../gguf/llama';
import { entryKind } from '../io/files';
import { extname, join } from '../io/paths';
import type { JobContext } from '../jobs/types';
import { ggufCacheFile, ggufCacheKey } from './ggufCache';

export interface ModelFileOptions {
  /** The tool's cache folder (io/files userCacheDir()); GGUF files go to its `gguf/` folder. */
  readonly cacheDir: string;
  /** Weight type of a conversion; default F16 (as `chatvec gguf`). */
  readonly type?: GgufFileType;
}

export interface ModelFile {
  /** The GGUF file to load. */
  readonly gguf: string;
  /** `gguf`: MODEL was one; `cache`: an earlier conversion was reused; `converted`: exported now. */
  readonly from: 'gguf' | 'cache' | 'converted';
}

/**
 * Resolves MODEL to a GGUF file, exporting a checkpoint into the cache when it has not been.
 * Progress and cancellation of a conversion go through `ctx` (phase `gguf`).
 * @throws ChatVecError InvalidArgument (missing path), as runGgufExport (Unsupported for another
 *   family or tokenizer, BadCheckpoint …); CancelledError
 */
export async function resolveModelFile(model: string, opts: ModelFileOptions, ctx: JobContext = {}): Promise<ModelFile> {
  const kind = entryKind(model);
  if (kind === 'missing') throw new ChatVecError('InvalidArgument', `${model}: no such file or folder`);
  if (kind === 'file' && extname(model).toLowerCase() === '.gguf') return { gguf: model, from: 'gguf' };
  const c = openCheckpoint(model);
  const type = opts.type ?? 'F16';
  const file = ggufCacheFile(join(opts.cacheDir, 'gguf'), c, ggufCacheKey(c, type), type);
  if (entryKind(file) === 'file') {
    ctx.onLog?.('debug', `using the GGUF converted earlier: ${file}`);
    return { gguf: file, from: 'cache' };
  }
  // debug: a failure (another family …) is then the only line; the report names the file.
  ctx.onLog?.('debug', `converting ${model} to GGUF (${type}) into the cache: ${file}`);
  try {
    await runGgufExport({ model, out: file, type }, ctx);
  } catch (e) {
    // Another run converting the same model at the same moment wrote it first: the same bytes.
    if (toChatVecError(e).code === 'OutputExists' && entryKind(file) === 'file') return { gguf: file, from: 'cache' };
    throw e;
  }
  return { gguf: file, from: 'converted' };
}
