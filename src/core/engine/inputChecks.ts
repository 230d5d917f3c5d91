/**
 * Checks that inputs line up before any work starts: the same tensor names, the same shapes, and
 * vocabularies that differ only where `--skip-embed` takes the target's embeddings unchanged.
 * Errors list the offending tensors so the user sees everything wrong at once.
 */
import type { Checkpoint, CatalogueEntry } from '../checkpoint/checkpoint';
import { isVocabTensor } from '../checkpoint/layers';
import { ChatVecError } from '../errors';
import { PositionalFile } from '../io/positionalFile';

const MAX_LISTED = 12;

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, MAX_LISTED).map((n) => `  ${n}`);
  if (names.length > MAX_LISTED) shown.push(`  … and ${names.length - MAX_LISTED} more`);
  return shown.join('\n');
}

function shapeStr(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

/**
 * Requires `b` to hold exactly the tensor names of `a` (aliases count), ignoring tensors for which
 * `ignore` is true.
 * @throws ChatVecError NameMismatch listing the names present on one side only
 */
export function requireSameNames(a: Checkpoint, b: Checkpoint, ignore: (t: CatalogueEntry) => boolean = () => false): void {
  const onlyA = a.tensors.filter((t) => !ignore(t) && !b.byName.has(t.name)).map((t) => t.name);
  const onlyB = b.tensors.filter((t) => !ignore(t) && !a.byName.has(t.name)).map((t) => t.name);
  if (onlyA.length === 0 && onlyB.length === 0) return;
  const parts: string[] = [];
  if (onlyA.length) parts.push(`${onlyA.length} tensor(s) only in ${a.path} (missing from ${b.path}):\n${listNames(onlyA)}`);
  if (onlyB.length) parts.push(`${onlyB.length} tensor(s) only in ${b.path} (missing from ${a.path}):\n${listNames(onlyB)}`);
  throw new ChatVecError('NameMismatch', `${a.path} and ${b.path} do not hold the same tensors: ${parts.join('\n')}`);
}

/**
 * Requires equal shapes for every tensor of `a` that `b` also has. Embedding and LM-head tensors
 * whose shapes differ get a vocabulary message that shows the shapes and suggests --skip-embed,
 * unless `skipEmbed` (then they are not compared: the target's are used unchanged).
 * @throws ChatVecError ShapeMismatch
 */
export function requireSameShapes(a: Checkpoint, b: Checkpoint, skipEmbed: boolean): void {
  const vocab: string[] = [];
  const other: string[] = [];
  for (const t of a.tensors) {
    const u = b.byName.get(t.name);
    if (!u || sameShape(t.shape, u.shape)) continue;
    if (isVocabTensor(t)) {
      if (!skipEmbed) vocab.push(`${t.name}: ${shapeStr(t.shape)} in ${a.path} vs ${shapeStr(u.shape)} in ${b.path}`);
    } else {
      other.push(`${t.name}: ${shapeStr(t.shape)} vs ${shapeStr(u.shape)}`);
    }
  }
  if (other.length) {
    throw new ChatVecError('ShapeMismatch', `tensor shapes differ between ${a.path} and ${b.path}:\n${listNames(other)}`);
  }
  if (vocab.length) {
    throw new ChatVecError(
      'ShapeMismatch',
      `the vocabularies differ (embedding/LM-head shapes):\n${listNames(vocab)}\npass --skip-embed to take the input embeddings and LM head from the target unchanged`,
    );
  }
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Whether a tensor is taken from the target unchanged because of --skip-embed. */
export function skippedAsEmbedding(t: CatalogueEntry, skipEmbed: boolean): boolean {
  return skipEmbed && isVocabTensor(t);
}

/**
 * Pairs ratios with inputs: none → 1.0 each; one → that ratio for all; n → in order.
 * @throws ChatVecError InvalidArgument on any other count (never silently truncated) or a
 *   non-finite ratio
 */
export function pairRatios(ratios: readonly number[] | undefined, n: number, what: string): number[] {
  const r = ratios ?? [];
  for (const x of r) if (!Number.isFinite(x)) throw new ChatVecError('InvalidArgument', `ratio ${x} is not a finite number`);
  if (r.length === 0) return Array.from({ length: n }, () => 1);
  if (r.length === 1) return Array.from({ length: n }, () => r[0]!);
  if (r.length === n) return [...r];
  throw new ChatVecError('InvalidArgument', `${r.length} ratios for ${n} ${what}: give one ratio for all or one per ${what.replace(/s$/, '')}`);
}

/**
 * Requires a non-float tensor to hold the same dtype, shape and bytes in two checkpoints (they are
 * copied from the target, which is only right when base and chat agree). Streams the bytes in
 * fixed-size pieces; memory does not grow with the tensor.
 * @throws ChatVecError ShapeMismatch naming the tensor and both files; Io on read errors
 */
export function requireSameNonFloat(name: string, a: CatalogueEntry, b: CatalogueEntry): void {
  const differ = () => new ChatVecError('ShapeMismatch', `tensor "${name}" is not a float tensor and differs between ${a.file} and ${b.file}; cannot combine it`);
  if (a.dtype !== b.dtype || !sameShape(a.shape, b.shape) || a.byteLength !== b.byteLength) throw differ();
  const piece = 1 << 20;
  const x = new Uint8Array(Math.min(piece, a.byteLength));
  const y = new Uint8Array(x.length);
  const fa = PositionalFile.openReadOnly(a.file);
  let fb: PositionalFile | null = null;
  try {
    fb = PositionalFile.openReadOnly(b.file);
    for (let done = 0; done < a.byteLength; done += piece) {
      const n = Math.min(piece, a.byteLength - done);
      fa.readIntoSync(x.subarray(0, n), a.position + done);
      fb.readIntoSync(y.subarray(0, n), b.position + done);
      for (let i = 0; i < n; i++) if (x[i] !== y[i]) throw differ();
    }
  } finally {
    fa.close();
    fb?.close();
  }
}
