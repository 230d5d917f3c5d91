/**
 * A Hugging Face Hub on 127.0.0.1 for the download tests, written here from the Hub's documented
 * HTTP interface (the endpoints @huggingface/hub and huggingface_hub call): model info at a revision
 * (`/api/models/ID/revision/REV`, with `sha`), the recursive tree listing (`/api/models/ID/tree/REV`,
 * with git and LFS ids), and `/ID/resolve/REV/PATH`, which redirects LFS files to a "CDN" path that
 * honours Range requests, and sends ETag and X-Repo-Commit. A gated repository answers 401 without
 * its token. Faults for the tests: cut a transfer short once, or serve corrupted bytes.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';

export interface FakeRepo {
  readonly commit: string;
  readonly branches: Readonly<Record<string, string>>;
  readonly files: ReadonlyMap<string, Buffer>;
  /** When set, every request needs `Authorization: Bearer <token>`. */
  readonly token?: string;
}

export interface LoggedRequest {
  readonly url: string;
  readonly range: string | undefined;
  readonly authorization: string | undefined;
}

const isLfs = (p: string) => /\.(safetensors|bin|pth|pt)$/.test(p);
const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const gitOid = (b: Buffer) => crypto.createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

export class FakeHub {
  readonly repos = new Map<string, FakeRepo>();
  readonly requests: LoggedRequest[] = [];
  /** Path → bytes after which the next transfer of that file is cut (the socket destroyed), once. */
  readonly cutOnce = new Map<string, number>();
  /** Paths served with one byte flipped. */
  readonly corrupt = new Set<string>();
  private server: http.Server | null = null;
  url = '';

  /** Listens on 127.0.0.1:`port` (default: a free port; the e2e tests use the one HF_ENDPOINT names). */
  async start(port = 0): Promise<void> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((ok) => this.server!.listen(port, '127.0.0.1', ok));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((ok) => this.server?.close(() => ok()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const u = new URL(req.url!, this.url);
    this.requests.push({ url: u.pathname + u.search, range: req.headers.range, authorization: req.headers.authorization });
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    let m = /^\/cdn\/([0-9a-f]{64})$/.exec(u.pathname);
    if (m) return this.serveBytes(req, res, u.searchParams.get('path')!, u.searchParams.get('repo')!, m[1]!);
    m = /^\/api\/models\/(.+)\/(revision|tree)\/([^/]+)$/.exec(u.pathname) ?? /^(.+)\/(resolve)\/([^/]+)\/(.+)$/.exec(u.pathname.slice(1));
    if (!m) return send(404, { error: 'not found' });
    const [, repoId, kind, rev, filePath] = m as unknown as [string, string, string, string, string | undefined];
    const repo = this.repos.get(repoId);
    if (!repo) return send(404, { error: `Repository not found` }, { 'X-Error-Code': 'RepoNotFound' });
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) {
      return send(401, { error: `Access to model ${repoId} is restricted. You must have access to it and be authenticated to access it.` }, { 'X-Error-Code': 'GatedRepo' });
    }
    const commit = repo.branches[decodeURIComponent(rev)] ?? (decodeURIComponent(rev) === repo.commit ? repo.commit : undefined);
    if (!commit) return send(404, { error: `Invalid rev id: ${rev}` }, { 'X-Error-Code': 'RevisionNotFound' });
    if (kind === 'revision') {
      return send(200, { _id: 'x', id: repoId, sha: commit, private: false, gated: repo.token ? 'manual' : false, downloads: 0, likes: 0, lastModified: '2026-01-01T00:00:00.000Z' });
    }
    if (kind === 'tree') {
      return send(200, [...repo.files].map(([p, b]) => ({
        type: 'file',
        path: p,
        size: b.length,
        oid: isLfs(p) ? gitOid(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(b)}\nsize ${b.length}\n`)) : gitOid(b),
        ...(isLfs(p) ? { lfs: { oid: sha256(b), size: b.length, pointerSize: 130 } } : {}),
      })));
    }
    const p = decodeURIComponent(filePath!);
    const bytes = repo.files.get(p);
    if (!bytes) return send(404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
    if (isLfs(p)) {
      res.writeHead(302, { Location: `/cdn/${sha256(bytes)}?repo=${encodeURIComponent(repoId)}&path=${encodeURIComponent(p)}`, 'X-Repo-Commit': commit, 'X-Linked-Etag': `"${sha256(bytes)}"`, 'X-Linked-Size': String(bytes.length), ETag: `"${gitOid(bytes)}"` });
      return void res.end();
    }
    this.serveBytes(req, res, p, repoId, null, { 'X-Repo-Commit': commit, ETag: `"${gitOid(bytes)}"` });
  }

  private serveBytes(req: http.IncomingMessage, res: http.ServerResponse, p: string, repoId: string, sha: string | null, headers: Record<string, string> = {}): void {
    let bytes = this.repos.get(repoId)!.files.get(p)!;
    if (sha !== null && sha256(bytes) !== sha) return void res.writeHead(404).end();
    if (this.corrupt.has(p)) {
      bytes = Buffer.from(bytes);
      bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      if (start >= bytes.length) return void res.writeHead(416, { 'Content-Range': `bytes */${bytes.length}` }).end();
    }
    const body = bytes.subarray(start);
    res.writeHead(range ? 206 : 200, {
      ...headers,
      'Content-Type': 'application/octet-stream',
      'Content-Length': String(body.length),
      'Accept-Ranges': 'bytes',
      ...(range ? { 'Content-Range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` } : {}),
    });
    const cut = this.cutOnce.get(p);
    if (cut !== undefined) {
      this.cutOnce.delete(p);
      res.write(body.subarray(0, cut), () => setTimeout(() => res.destroy(), 20));
      return;
    }
    res.end(body);
  }
}

/**
 * Points this process's Hugging Face settings at `hub` with a fresh cache folder under `root`
 * (no token, and no HF_HOME of the machine) and clears the hub's request log; returns the cache
 * folder. For beforeEach; `saved` is the environment the tests restore afterwards.
 */
export function isolateHubEnv(hub: FakeHub, root: string, saved: NodeJS.ProcessEnv): string {
  const cache = fs.mkdtempSync(path.join(root, 'hub-'));
  process.env = { ...saved, HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, HF_HOME: path.join(root, 'no-home') };
  delete process.env.HF_TOKEN;
  delete process.env.HUGGING_FACE_HUB_TOKEN;
  delete process.env.HF_TOKEN_PATH;
  hub.requests.length = 0;
  return cache;
}
