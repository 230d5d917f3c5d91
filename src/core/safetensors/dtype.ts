/**
 * The dtypes of the safetensors format (huggingface/safetensors `Dtype`), with their sizes in bits.
 * Sub-byte dtypes (F4, F6_*) pack several elements per byte; a tensor of them must fill whole bytes.
 */
export const DTYPE_BITS = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
} as const;

export type Dtype = keyof typeof DTYPE_BITS;

/** Floating-point dtypes that the engine converts to float32 and back. */
export type FloatDtype = 'F16' | 'BF16' | 'F32' | 'F64';
export const FLOAT_DTYPES: readonly FloatDtype[] = ['F16', 'BF16', 'F32', 'F64'];

export function isDtype(s: unknown): s is Dtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BITS, s);
}

export function isFloatDtype(d: Dtype): d is FloatDtype {
  return d === 'F16' || d === 'BF16' || d === 'F32' || d === 'F64';
}

/** Size of one element in bits. */
export function dtypeBits(d: Dtype): number {
  return DTYPE_BITS[d];
}

/** Size of one element in bytes; throws for sub-byte dtypes, which have no whole-byte element. */
export function dtypeBytes(d: Dtype): number {
  const bits = DTYPE_BITS[d];
  if (bits % 8 !== 0) throw new RangeError(`${d} packs ${bits}-bit elements; it has no per-element byte size`);
  return bits / 8;
}

/** Parses a user-facing dtype name: f32, float32, bf16, bfloat16, f16, float16, fp16 … */
export function parseFloatDtype(s: string): FloatDtype | undefined {
  const k = s.trim().toLowerCase();
  const map: Record<string, FloatDtype> = {
    f32: 'F32', float32: 'F32', fp32: 'F32',
    bf16: 'BF16', bfloat16: 'BF16',
    f16: 'F16', float16: 'F16', fp16: 'F16', half: 'F16',
    f64: 'F64', float64: 'F64', fp64: 'F64',
  };
  return map[k];
}

/** The `torch_dtype` name that Hugging Face configs use for a float dtype. */
export function torchDtypeName(d: FloatDtype): string {
  return { F16: 'float16', BF16: 'bfloat16', F32: 'float32', F64: 'float64' }[d];
}
