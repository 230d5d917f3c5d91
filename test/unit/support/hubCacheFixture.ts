/**
 * A Hugging Face hub cache built by the tests as huggingface_hub writes it (written here from its
 * documented layout, not with the code under test): `models--org--name/blobs/<etag>` holding the
 * bytes (sha256 for LFS files such as *.safetensors, the git blob id for the rest),
 * `snapshots/<commit>/<file>` relative symlinks into ../../blobs (deeper for files in folders), and
 * `refs/<revision>` text files holding the commit.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** The etag the Hub gives a file: sha256 of LFS files, git's blob sha1 of the others. */
export function hubEtag(name: string, bytes: Buffer): string {
  if (name.endsWith('.safetensors')) return crypto.createHash('sha256').update(bytes).digest('hex');
  return crypto.createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

/** A 40-hex commit id derived from a label (stable across runs). */
export function fakeCommit(label: string): string {
  return crypto.createHash('sha1').update(label).digest('hex');
}

/**
 * Places every file of folder `model` into the cache as snapshot `commit` of `repoId`, and points
 * each of `refs` at it. @returns the snapshot folder
 */
export function placeInCache(cache: string, repoId: string, commit: string, model: string, refs: readonly string[] = ['main']): string {
  const storage = path.join(cache, `models--${repoId.split('/').join('--')}`);
  const snapshot = path.join(storage, 'snapshots', commit);
  fs.mkdirSync(path.join(storage, 'blobs'), { recursive: true });
  fs.mkdirSync(snapshot, { recursive: true });
  for (const name of fs.readdirSync(model)) {
    const bytes = fs.readFileSync(path.join(model, name));
    const etag = hubEtag(name, bytes);
    const blob = path.join(storage, 'blobs', etag);
    if (!fs.existsSync(blob)) fs.writeFileSync(blob, bytes);
    fs.symlinkSync(path.relative(snapshot, blob), path.join(snapshot, name));
  }
  for (const r of refs) {
    fs.mkdirSync(path.dirname(path.join(storage, 'refs', r)), { recursive: true });
    fs.writeFileSync(path.join(storage, 'refs', r), commit); // huggingface_hub writes no newline
  }
  return snapshot;
}
