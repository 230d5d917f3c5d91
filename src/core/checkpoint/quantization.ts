/**
 * Quantized checkpoints: weights stored as low-precision codes whose values mean nothing without
 * the scale tensors beside them — FP8 (DeepSeek-V3's F8_E4M3 `weight` + `weight_scale_inv`, FBGEMM
 * and compressed-tensors' `weight` + `weight_scale`), FP4/FP6, and integer formats (GPTQ/AWQ
 * `qweight` + `scales`/`qzeros`, bitsandbytes `weight` + `absmax`/`SCB`). chatvec's arithmetic
 * works on float values: adding codes, or adding scales as if they were weights, gives a wrong
 * model without any error. So quantization is recognised from the headers (and config.json's
 * `quantization_config`), apply/extract/merge refuse it before any work, and diff/inspect say
 * which tensors they could not compare.
 *
 * Tensors are the evidence: a config that names a quant method while every weight is a float
 * (compressed-tensors' dense/sparse-only format, or a dequantized copy that kept the key) is
 * not quantized for chatvec, since its weights can be added as they are.
 */
import { ChatVecError } from '../errors';
import { type Dtype, isFloatDtype } from '../safetensors/dtype';
import type { Checkpoint } from './checkpoint';

/** How a checkpoint is quantized, as found in its headers and config.json. */
export interface Quantization {
  /**
   * 'fp8' (F8_E4M3/F8_E5M2 weights), 'fp4', 'fp6', else config.json's
   * `quantization_config.quant_method` ('gptq', 'awq', 'bitsandbytes', 'compressed-tensors', …),
   * else 'integer' (integer `weight`/`qweight` tensors beside scale tensors).
   */
  readonly kind: string;
  /** What shows it, e.g. "F8_E4M3 weights with weight_scale_inv, quantization_config.quant_method fp8". */
  readonly evidence: string;
  /** Every tensor that holds codes or their scales, with why it cannot be used as a float weight. */
  readonly tensors: ReadonlyMap<string, string>;
}

/** Dtypes that only quantized checkpoints use (safetensors has no plain FP8/FP4 model weights). */
const LOW_PRECISION_FLOAT: ReadonlySet<Dtype> = new Set<Dtype>(['F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2']);
const INTEGER: ReadonlySet<Dtype> = new Set<Dtype>(['I8', 'U8', 'I16', 'U16', 'I32', 'U32']);

/**
 * Names of the per-weight side tensors of the quantization formats above: the last name segment
 * (or the part after `weight.` for bitsandbytes). Matched by plain string comparison.
 */
const COMPANION_SEGMENTS: ReadonlySet<string> = new Set([
  'weight_scale_inv', 'weight_scale', 'weight_scale_2', 'input_scale', 'output_scale', 'k_scale', 'v_scale',
  'weight_zero_point', 'input_zero_point', 'weight_global_scale', 'input_global_scale', 'weight_shape',
  'scales', 'qzeros', 'g_idx', 'SCB', 'weight_format', 'absmax', 'quant_map', 'nested_absmax', 'nested_quant_map',
]);

function lastSegment(name: string): string {
  return name.slice(name.lastIndexOf('.') + 1);
}

/** Whether a tensor name is a scale, zero point or quant state of some quantized weight. */
function isCompanionName(name: string): boolean {
  const last = lastSegment(name);
  if (COMPANION_SEGMENTS.has(last) || last.endsWith('_scale') || last.endsWith('_scale_inv') || last.endsWith('_scales')) return true;
  return name.includes('.quant_state.');
}

/** Whether an integer tensor is named as a weight of the integer formats. */
function isIntegerWeight(name: string, dtype: Dtype): boolean {
  if (!INTEGER.has(dtype)) return false;
  const last = lastSegment(name);
  return last === 'weight' || last === 'qweight' || last === 'weight_packed' || last.endsWith('_blocks');
}

function configMethod(config: Readonly<Record<string, unknown>> | null): string | null {
  const q = config?.quantization_config;
  if (q === null || typeof q !== 'object' || Array.isArray(q)) return null;
  const m = (q as Record<string, unknown>).quant_method;
  return typeof m === 'string' && m.length > 0 ? m : 'unnamed method';
}

/**
 * Finds out from headers and config.json whether a checkpoint is quantized.
 * @returns null for a checkpoint of float weights (F16/BF16/F32/F64 plus ordinary non-float
 *   buffers such as I64 position ids or BOOL masks)
 */
export function quantizationOf(c: Checkpoint): Quantization | null {
  const method = configMethod(c.config);
  // Low-precision floats are codes wherever they are; an integer tensor named like a weight only
  // beside scale tensors or a quantization_config (an integer buffer may be called anything).
  const integerCodes = method !== null || c.tensors.some((t) => isCompanionName(t.name));
  const codes = c.tensors.filter((t) => LOW_PRECISION_FLOAT.has(t.dtype) || (integerCodes && isIntegerWeight(t.name, t.dtype)));
  if (codes.length === 0 && !(method !== null && c.tensors.some((t) => !isFloatDtype(t.dtype) && isCompanionName(t.name)))) return null;
  const tensors = new Map<string, string>();
  const codeDtypes = new Set<Dtype>();
  for (const t of codes) {
    codeDtypes.add(t.dtype);
    tensors.set(t.name, 'quantized weight');
  }
  const companionKinds = new Set<string>();
  for (const t of c.tensors) {
    if (tensors.has(t.name) || !isCompanionName(t.name)) continue;
    companionKinds.add(name2kind(t.name));
    tensors.set(t.name, 'scale or state of a quantized weight');
  }
  const has = (...ds: Dtype[]) => ds.some((d) => codeDtypes.has(d));
  const kind = has('F8_E4M3', 'F8_E5M2') ? 'fp8' : has('F4') ? 'fp4' : has('F6_E2M3', 'F6_E3M2') ? 'fp6' : (method ?? 'integer');
  const parts: string[] = [];
  if (codeDtypes.size) parts.push(`${[...codeDtypes].join('/')} weights${companionKinds.size ? ` with ${[...companionKinds].slice(0, 3).join(', ')}` : ''}`);
  else parts.push(`${[...companionKinds].slice(0, 3).join(', ')} tensors`);
  if (method !== null) parts.push(`quantization_config.quant_method ${method}`);
  return { kind, evidence: parts.join(', '), tensors };
}

/** The side tensor's kind as shown in messages: `weight_scale_inv`, `absmax`, `quant_state`. */
function name2kind(name: string): string {
  return name.includes('.quant_state.') ? 'quant_state' : lastSegment(name);
}

/** "FP8", "FP4", "GPTQ" … as the message's adjective. */
export function quantizationLabel(q: Quantization): string {
  return q.kind === 'integer' ? 'integer' : q.kind.toUpperCase();
}

/**
 * Refuses a quantized checkpoint before any work: apply, extract and merge add float weights, and
 * codes or scales added as floats give a wrong model without any error.
 * @returns the checkpoint, for chaining after openCheckpoint
 * @throws ChatVecError Unsupported: one line naming the checkpoint, the evidence and what to use instead
 */
export function requireUnquantized(c: Checkpoint): Checkpoint {
  const q = quantizationOf(c);
  if (q === null) return c;
  throw new ChatVecError(
    'Unsupported',
    `${c.path}: ${quantizationLabel(q)}-quantized checkpoint (${q.evidence}); chatvec does arithmetic on BF16/F16/F32 weights only — use a BF16/F16 release of the model or dequantize it first`,
  );
}
