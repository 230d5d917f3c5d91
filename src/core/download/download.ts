/**
 * `chatvec download ID[@rev]`: a model from the Hub (or HF_ENDPOINT) into the hub cache, in the
 * layout huggingface_hub writes (cacheLayout.ts), so Python tools and chatvec share the files.
 *
 * The repository's commit and file list come from `@huggingface/hub` (modelInfo, listFiles). The
 * transfer itself is written here over fetch, because the package's downloadFileToCacheDir (2.17.5)
 * cannot do what a multi-gigabyte shard needs: it does not resume a partial file, does not verify
 * the sha256 of LFS files, reports no progress, names the snapshot after the file's last commit
 * rather than the repository's, names xet-stored blobs by their xet hash (huggingface_hub names
 * them by sha256) and writes no refs.
 */
import { CancelledError, ChatVecError, isCancelled } from '../errors';
import { ProgressMeter } from '../jobs/progressMeter';
import type { JobContext, ProgressSink } from '../jobs/types';
import { getEnv } from '../io/env';
import { fileExists, fileSizeOrZero, linkSnapshotFile, openPartialBlob, takeLock, writeRefFile } from '../io/hubBlobFile';
import { join } from '../io/paths';
import { readJsonObject, readSmallTextOrNull } from '../io/sideFile';
import { COMMIT_HASH, hfHome, hubCacheLocation, repoFolderName } from '../hub/cacheLayout';
import { type ModelId, formatModelId, parseModelId } from '../hub/modelId';

/** Files a merge needs besides the weights: config, tokenizer and generation files, chat templates. */
const SIDE_FILES = /^(config\.json|generation_config\.json|tokenizer[^/]*|special_tokens_map\.json|added_tokens\.json|vocab\.(json|txt)|merges\.txt|chat_template\.(jinja|json)|[^/]*\.safetensors\.index\.json)$/;
/** Never downloaded: pickled weights are never loaded (see checkpoint.ts). */
const PICKLED = /\.(bin|pt|pth|ckpt|pkl)$/i;

export interface DownloadOptions {
  readonly id: ModelId;
  /** Globs (`*` within a name, `**` across folders) that replace the default selection. */
  readonly include?: readonly string[];
  /** A token given explicitly (--token); else HF_TOKEN, HUGGING_FACE_HUB_TOKEN, the token file. */
  readonly token?: string;
  readonly signal?: AbortSignal;
  /** Bytes received against bytes still missing from the cache (files there and resumed parts excluded), with rate and ETA. */
  readonly onProgress?: ProgressSink;
  readonly onLog?: (message: string) => void;
}

export interface DownloadResult {
  readonly snapshot: string;
  readonly commit: string;
  readonly files: readonly string[];
  /** Bytes received in this run (files already cached are not counted). */
  readonly bytesReceived: number;
}

/** A download as a task host job: the model id as text, like the CLI's argument. */
export interface DownloadJobOptions {
  /** `org/name` or `org/name@revision`. */
  readonly id: string;
  readonly include?: readonly string[];
  readonly token?: string;
}

/**
 * `downloadModel` as a job (the task host, `chatvec download`): the job's polled cancel signal
 * aborts the transfer (the partial file stays for the next run), progress and log lines go to `ctx`.
 * @throws ChatVecError InvalidArgument (not an id), as {@link downloadModel}; CancelledError
 */
export async function runDownloadJob(opts: DownloadJobOptions, ctx: JobContext = {}): Promise<DownloadResult> {
  const id = parseModelId(opts.id);
  if (!id) throw new ChatVecError('InvalidArgument', `"${opts.id}" is not a model id (org/name or org/name@revision)`);
  const abort = new AbortController();
  const poll = setInterval(() => ctx.signal?.cancelled && abort.abort(), CANCEL_POLL_MS);
  try {
    return await downloadModel({ id, include: opts.include, token: opts.token, signal: abort.signal, onProgress: ctx.onProgress, onLog: (m) => ctx.onLog?.('info', m) });
  } catch (e) {
    if (ctx.signal?.cancelled || isCancelled(e)) throw new CancelledError('cancelled; the partial download is kept and resumes next time');
    throw e;
  } finally {
    clearInterval(poll);
  }
}

/** How often a job's cancel flag is looked at, in ms. */
const CANCEL_POLL_MS = 100;

/** The Hub's address: HF_ENDPOINT (mirrors, tests), else https://huggingface.co. */
export function hubEndpoint(): string {
  return (getEnv('HF_ENDPOINT') || 'https://huggingface.co').replace(/\/+$/, '');
}

/**
 * The token to send, as huggingface_hub's get_token finds it: the explicit one, else HF_TOKEN, else
 * HUGGING_FACE_HUB_TOKEN, else the file `hf auth login` writes (HF_TOKEN_PATH, else HF_HOME/token).
 * Never logged: messages say only whether a token was sent.
 */
export function findToken(explicit?: string): string | undefined {
  const clean = (t: string | null | undefined) => (t ? t.replace(/[\r\n]/g, '').trim() || undefined : undefined);
  return clean(explicit) ?? clean(getEnv('HF_TOKEN')) ?? clean(getEnv('HUGGING_FACE_HUB_TOKEN')) ?? clean(readSmallTextOrNull(getEnv('HF_TOKEN_PATH') || join(hfHome(), 'token'), 'marker'));
}

/** A glob as a regular expression over repository paths: `**` any folders, `*` and `?` within a name. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

interface RepoFile {
  readonly path: string;
  readonly size: number;
  /** The blob's name in the cache: sha256 for LFS files, the git blob id for the rest. */
  readonly etag: string;
  readonly lfs: boolean;
}

/** One-line errors for what the Hub answers; the token itself never appears. */
function hubError(e: unknown, id: string, token: string | undefined): ChatVecError {
  if (e instanceof ChatVecError) return e;
  // @huggingface/hub's HubApiError (loaded lazily, so matched by shape) or a status of ours.
  const status = (e as { statusCode?: unknown })?.statusCode;
  if (typeof status === 'number') {
    const err = e as { statusCode: number; message?: string };
    if (err.statusCode === 401 || err.statusCode === 403) {
      const how = token ? 'the token sent was refused or has no access to it' : 'no token was sent (set HF_TOKEN, pass --token, or run `hf auth login`)';
      return new ChatVecError('Io', `${id}: the Hub refused access (HTTP ${err.statusCode}): the repository is gated or private, or does not exist; ${how}; for a gated model, accept its terms on ${hubEndpoint()}/${id}`);
    }
    if (err.statusCode === 404) return new ChatVecError('Io', `${id}: not found on ${hubEndpoint()} (HTTP 404): check the id and the revision`);
    return new ChatVecError('Io', `${id}: the Hub answered HTTP ${err.statusCode} (${(err.message ?? '').split('\n', 1)[0]})`);
  }
  const err = e as Error;
  if (err?.name === 'AbortError') return new ChatVecError('Cancelled', 'cancelled; the partial download is kept and resumes next time');
  return new ChatVecError('Io', `${id}: cannot reach ${hubEndpoint()} (${err?.message ?? String(e)}${(err as { cause?: Error })?.cause?.message ? `: ${(err as { cause?: Error }).cause!.message}` : ''})`);
}

/**
 * Downloads the files a merge needs (or those matching `include`) of `opts.id` into the hub cache;
 * files already there are not fetched again, a partial file resumes.
 * @throws ChatVecError Io (network, HTTP errors, 401 for gated or private repositories),
 *   BadCheckpoint (a file whose sha256 or size is wrong: its partial copy is deleted), Cancelled
 */
export async function downloadModel(opts: DownloadOptions): Promise<DownloadResult> {
  const id = opts.id.repoId;
  const token = findToken(opts.token);
  const hubUrl = hubEndpoint();
  const credentials = token ? { accessToken: token } : {};
  const fetchWithSignal: typeof fetch = (input, init) => fetch(input, { ...init, signal: opts.signal });
  const revision = opts.id.revision ?? 'main';
  // Loaded on first use: the task host and the CLI start without evaluating the Hub client.
  const { listFiles, modelInfo } = await import('@huggingface/hub');
  let commit: string;
  let files: RepoFile[];
  try {
    const info = await modelInfo({ name: id, revision, hubUrl, additionalFields: ['sha'], fetch: fetchWithSignal, ...credentials });
    commit = String((info as { sha?: unknown }).sha ?? '');
    if (!COMMIT_HASH.test(commit)) throw new ChatVecError('Io', `${id}: the Hub gave no commit for revision "${revision}"`);
    files = [];
    for await (const f of listFiles({ repo: { type: 'model', name: id }, revision: commit, recursive: true, hubUrl, fetch: fetchWithSignal, ...credentials })) {
      if (f.type !== 'file') continue;
      const etag = f.lfs?.oid ?? f.oid;
      // Both become file names in the cache: a name that climbs out of the snapshot, or an id that
      // is not a hash, is refused (huggingface_hub's _get_pointer_path makes the same check).
      if (!etag || !/^([0-9a-f]{40}|[0-9a-f]{64})$/.test(etag)) throw new ChatVecError('Io', `${id}: the file list gives no valid id for ${JSON.stringify(f.path)}`);
      if (!isSafeRepoPath(f.path)) throw new ChatVecError('Io', `${id}: the file list names ${JSON.stringify(f.path)}, which would lie outside the snapshot folder`);
      files.push({ path: f.path, size: f.lfs?.size ?? f.size, etag, lfs: f.lfs !== undefined });
    }
  } catch (e) {
    throw hubError(e, id, token);
  }

  const cache = hubCacheLocation().dir;
  const storage = join(cache, repoFolderName(id));
  const snapshot = join(storage, 'snapshots', commit);
  const ctx: Transfer = { id, commit, storage, snapshot, hubUrl, token, signal: opts.signal, received: 0 };
  // Written first, as huggingface_hub's snapshot_download does: an interrupted download then shows
  // as an incomplete snapshot of the right commit rather than as a missing revision.
  if (!COMMIT_HASH.test(revision)) writeRefFile(join(storage, 'refs', revision), commit);
  const selected = await selectFiles(files, opts.include, ctx);
  const blobOf = (f: RepoFile) => join(storage, 'blobs', f.etag);
  const missing = selected.reduce((a, f) => a + (fileExists(blobOf(f)) ? 0 : Math.max(0, f.size - fileSizeOrZero(`${blobOf(f)}.incomplete`))), 0);
  const meter = new ProgressMeter(`download ${id}`, missing, opts.onProgress);
  for (const f of selected) await fetchFile(f, ctx, (n) => meter.add(n));
  meter.finish();
  opts.onLog?.(`${formatModelId(opts.id)}: ${selected.length} files, commit ${commit}, in ${snapshot}`);
  return { snapshot, commit, files: selected.map((f) => f.path), bytesReceived: ctx.received };
}

/** A repository file path that stays inside the snapshot: relative, no `.`/`..` parts, no backslash or control characters. */
function isSafeRepoPath(p: string): boolean {
  if (p === '' || p.startsWith('/') || p.includes('\\') || /^[a-zA-Z]:/.test(p) || [...p].some((c) => c.charCodeAt(0) < 0x20)) return false;
  return p.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

interface Transfer {
  readonly id: string;
  readonly commit: string;
  readonly storage: string;
  readonly snapshot: string;
  readonly hubUrl: string;
  readonly token: string | undefined;
  readonly signal: AbortSignal | undefined;
  received: number;
}

/**
 * The default selection: side files, then the weights the index names (so a repository that also
 * holds `consolidated.safetensors` or an `original/` copy gets one set), else model.safetensors,
 * else every top-level .safetensors file. The index is fetched first to read its weight_map.
 */
async function selectFiles(files: readonly RepoFile[], include: readonly string[] | undefined, t: Transfer): Promise<RepoFile[]> {
  const usable = files.filter((f) => !PICKLED.test(f.path));
  if (include?.length) {
    const res = include.map(globToRegExp);
    const chosen = usable.filter((f) => res.some((r) => r.test(f.path)));
    if (!chosen.length) throw new ChatVecError('InvalidArgument', `${t.id}: no file matches --include ${include.join(', ')} (pickled .bin/.pt/.pth files are never downloaded)`);
    return chosen;
  }
  const side = usable.filter((f) => SIDE_FILES.test(f.path));
  const index = side.find((f) => f.path === 'model.safetensors.index.json');
  let weights: RepoFile[];
  if (index) {
    await fetchFile(index, t, () => {});
    const map = readJsonObject(join(t.snapshot, index.path)).weight_map;
    const shards = new Set(map !== null && typeof map === 'object' ? Object.values(map as Record<string, unknown>).map(String) : []);
    weights = usable.filter((f) => shards.has(f.path));
    const absent = [...shards].filter((s) => !weights.some((w) => w.path === s));
    if (absent.length) throw new ChatVecError('BadCheckpoint', `${t.id}: model.safetensors.index.json lists ${absent.join(', ')}, which the repository does not hold`);
  } else {
    const single = usable.find((f) => f.path === 'model.safetensors');
    weights = single ? [single] : usable.filter((f) => !f.path.includes('/') && f.path.endsWith('.safetensors'));
  }
  if (!weights.length) throw new ChatVecError('Unsupported', `${t.id}: the repository has no .safetensors weights (pickled .bin/.pt/.pth files are never downloaded)`);
  return [...side, ...weights];
}

/** Fetches one file into blobs/ (unless there) and links it into the snapshot; `onBytes` gets each chunk's length. */
async function fetchFile(f: RepoFile, t: Transfer, onBytes: (n: number) => void): Promise<void> {
  const blob = join(t.storage, 'blobs', f.etag);
  const pointer = join(t.snapshot, f.path);
  if (!fileExists(blob)) {
    // Where huggingface_hub keeps its locks: <cache>/.locks/models--org--name/<etag>.lock.
    const release = takeLock(join(t.storage, '..', '.locks', repoFolderName(t.id), `${f.etag}.lock`));
    try {
      if (!fileExists(blob)) await transfer(f, t, blob, onBytes);
    } finally {
      release();
    }
  }
  linkSnapshotFile(blob, pointer);
}

async function transfer(f: RepoFile, t: Transfer, blob: string, onBytes: (n: number) => void): Promise<void> {
  const part = openPartialBlob(`${blob}.incomplete`, f.size);
  try {
    const url = `${t.hubUrl}/${t.id}/resolve/${t.commit}/${f.path.split('/').map(encodeURIComponent).join('/')}`;
    const headers: Record<string, string> = {};
    if (t.token) headers.Authorization = `Bearer ${t.token}`;
    if (part.size > 0 && part.size < f.size) headers.Range = `bytes=${part.size}-`;
    else if (part.size > f.size) part.restart();
    if (part.size < f.size || f.size === 0) {
      let res: Response;
      try {
        // Redirects (to a CDN for LFS files) are followed; fetch drops Authorization on a
        // redirect to another origin, and keeps Range.
        res = await fetch(url, { headers, signal: t.signal, redirect: 'follow' });
      } catch (e) {
        throw hubError(e, t.id, t.token);
      }
      if (res.status === 401 || res.status === 403 || res.status === 404) throw hubError({ statusCode: res.status, message: url }, t.id, t.token);
      if (res.status === 416) {
        // The partial file is not a prefix the server knows: start over.
        part.restart();
        part.close();
        return transfer(f, t, blob, onBytes);
      }
      if (res.status !== 200 && res.status !== 206) throw new ChatVecError('Io', `${f.path}: the Hub answered HTTP ${res.status} for ${url}`);
      if (res.status === 200 && part.size > 0) part.restart(); // the server ignored the range
      if (!res.body) throw new ChatVecError('Io', `${f.path}: empty response from ${url}`);
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          part.append(chunk);
          t.received += chunk.length;
          onBytes(chunk.length);
        }
      } catch (e) {
        if (e instanceof ChatVecError) throw e;
        const err = hubError(e, t.id, t.token);
        if (err.code === 'Cancelled') throw err;
        throw new ChatVecError('Io', `${f.path}: the transfer broke off after ${part.size} of ${f.size} bytes (${(e as Error).message}); run the download again to resume`);
      }
    }
    if (part.size < f.size) throw new ChatVecError('Io', `${f.path}: the transfer broke off after ${part.size} of ${f.size} bytes; run the download again to resume`);
    part.complete(f.size, f.lfs ? { sha256: f.etag } : { gitSha1: f.etag }, blob, `${t.id}: ${f.path}`);
  } finally {
    part.close();
  }
}
