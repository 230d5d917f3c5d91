/**
 * Planning safetensors outputs before any data exists: each file's header (padded with spaces to a
 * multiple of 8 bytes so that data is aligned, as the reference writer does), every tensor's final
 * byte position, and the split into shards by a byte budget with Hugging Face names and index.
 * Data then streams straight to its final offsets (see io/outputFile.ts).
 */
import { ChatVecError } from '../errors';
import { OutputFile } from '../io/outputFile';
import { type Dtype, dtypeBits } from './dtype';

export interface TensorSpec {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
}

export interface PlannedTensor extends TensorSpec {
  readonly elementCount: number;
  readonly byteLength: number;
  /** Absolute byte position of element 0 in its file. */
  readonly position: number;
}

export interface FilePlan {
  /** File name (no folder), e.g. `model-00001-of-00002.safetensors`. */
  readonly fileName: string;
  /** 8-byte length + JSON header + padding. */
  readonly headerBytes: Uint8Array;
  readonly tensors: readonly PlannedTensor[];
  /** Total file size in bytes. */
  readonly size: number;
}

export function tensorByteLength(dtype: Dtype, shape: readonly number[]): number {
  const n = shape.reduce((a, b) => a * b, 1);
  const bits = n * dtypeBits(dtype);
  if (bits % 8 !== 0) throw new ChatVecError('InvalidArgument', `${n} ${dtype} elements do not fill whole bytes`);
  return bits / 8;
}

/**
 * Plans one safetensors file with the tensors in the given order.
 * @param metadata string → string; `format: pt` is added (readers such as transformers expect it)
 */
export function planSafetensorsFile(fileName: string, specs: readonly TensorSpec[], metadata: Record<string, string> = {}): FilePlan {
  // No prototype: a tensor named `__proto__` must become a key, not replace the prototype.
  const header: Record<string, unknown> = Object.assign(Object.create(null) as Record<string, unknown>, { __metadata__: { format: 'pt', ...metadata } });
  const names = new Set<string>();
  let offset = 0;
  const rel: { spec: TensorSpec; begin: number; end: number; elementCount: number }[] = [];
  for (const s of specs) {
    if (names.has(s.name)) throw new ChatVecError('InvalidArgument', `tensor "${s.name}" planned twice in ${fileName}`);
    names.add(s.name);
    const len = tensorByteLength(s.dtype, s.shape);
    header[s.name] = { dtype: s.dtype, shape: [...s.shape], data_offsets: [offset, offset + len] };
    rel.push({ spec: s, begin: offset, end: offset + len, elementCount: s.shape.reduce((a, b) => a * b, 1) });
    offset += len;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const headerBytes = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(headerBytes.buffer).setBigUint64(0, BigInt(padded), true);
  headerBytes.set(json, 8);
  const dataStart = 8 + padded;
  return {
    fileName,
    headerBytes,
    size: dataStart + offset,
    tensors: rel.map((r) => ({ ...r.spec, elementCount: r.elementCount, byteLength: r.end - r.begin, position: dataStart + r.begin })),
  };
}

export interface CheckpointPlan {
  readonly files: readonly FilePlan[];
  /** `model.safetensors.index.json` contents when sharded, else null. */
  readonly index: { metadata: { total_size: number }; weight_map: Record<string, string> } | null;
  /** Sum of tensor bytes (what Hugging Face calls total_size). */
  readonly totalTensorBytes: number;
}

/**
 * Splits tensors (kept in order) into shards of at most `maxShardBytes` tensor bytes each, like
 * transformers' `save_pretrained`: a tensor larger than the budget gets a shard of its own.
 * One shard is named `model.safetensors`; several are `model-0000i-of-0000N.safetensors`.
 */
export function planCheckpoint(specs: readonly TensorSpec[], maxShardBytes: number, metadata: Record<string, string> = {}): CheckpointPlan {
  if (!(maxShardBytes > 0)) throw new ChatVecError('InvalidArgument', `max shard size must be positive, got ${maxShardBytes}`);
  const groups: TensorSpec[][] = [];
  let current: TensorSpec[] = [];
  let currentBytes = 0;
  let total = 0;
  for (const s of specs) {
    const len = tensorByteLength(s.dtype, s.shape);
    total += len;
    if (current.length > 0 && currentBytes + len > maxShardBytes) {
      groups.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(s);
    currentBytes += len;
  }
  if (current.length > 0 || groups.length === 0) groups.push(current);
  const n = groups.length;
  const pad = (i: number) => String(i).padStart(5, '0');
  const files = groups.map((g, i) =>
    planSafetensorsFile(n === 1 ? 'model.safetensors' : `model-${pad(i + 1)}-of-${pad(n)}.safetensors`, g, metadata),
  );
  const index =
    n === 1
      ? null
      : {
          metadata: { total_size: total },
          weight_map: Object.fromEntries(files.flatMap((f) => f.tensors.map((t) => [t.name, f.fileName] as const))),
        };
  return { files, index, totalTensorBytes: total };
}

/** Creates the file at `path` with its final size and writes its header. Data is written after. */
export function createPlannedFile(path: string, plan: FilePlan): OutputFile {
  const f = OutputFile.create(path, plan.size);
  f.writeAtSync(plan.headerBytes, 0);
  return f;
}
