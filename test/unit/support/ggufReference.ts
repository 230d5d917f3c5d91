// An independent GGUF v3 reader for the tests (written from gguf.h's layout, sharing no code with
// src/core/gguf), float decoders, and the tiny byte-level BPE tokenizer the export tests use.
import fs from 'node:fs';
import path from 'node:path';

export interface ReadTensor {
  readonly name: string;
  readonly dims: number[];
  readonly type: number;
  /** Absolute byte position of the data. */
  readonly position: number;
}

export interface ReadGguf {
  readonly version: number;
  readonly kv: Map<string, unknown>;
  readonly tensors: Map<string, ReadTensor>;
  readonly dataStart: number;
  readonly bytes: Buffer;
}

/** Parses a whole GGUF file (small test files only). */
export function readGgufFile(file: string): ReadGguf {
  const b = fs.readFileSync(file);
  let p = 0;
  const u32 = () => ((p += 4), b.readUInt32LE(p - 4));
  const u64 = () => ((p += 8), Number(b.readBigUInt64LE(p - 8)));
  const str = () => {
    const n = u64();
    p += n;
    return b.toString('utf8', p - n, p);
  };
  const value = (t: number): unknown => {
    switch (t) {
      case 0: return (p += 1), b.readUInt8(p - 1);
      case 1: return (p += 1), b.readInt8(p - 1);
      case 2: return (p += 2), b.readUInt16LE(p - 2);
      case 3: return (p += 2), b.readInt16LE(p - 2);
      case 4: return u32();
      case 5: return (p += 4), b.readInt32LE(p - 4);
      case 6: return (p += 4), b.readFloatLE(p - 4);
      case 7: return (p += 1), b.readUInt8(p - 1) !== 0;
      case 8: return str();
      case 9: {
        const et = u32();
        const n = u64();
        return Array.from({ length: n }, () => value(et));
      }
      case 10: return u64();
      case 11: return (p += 8), Number(b.readBigInt64LE(p - 8));
      case 12: return (p += 8), b.readDoubleLE(p - 8);
      default: throw new Error(`unknown GGUF value type ${t}`);
    }
  };
  if (b.toString('latin1', 0, 4) !== 'GGUF') throw new Error('not GGUF');
  p = 4;
  const version = u32();
  const nt = u64();
  const nkv = u64();
  const kv = new Map<string, unknown>();
  for (let i = 0; i < nkv; i++) {
    const k = str();
    kv.set(k, value(u32()));
  }
  const infos: { name: string; dims: number[]; type: number; offset: number }[] = [];
  for (let i = 0; i < nt; i++) {
    const name = str();
    const nd = u32();
    const dims = Array.from({ length: nd }, () => u64());
    infos.push({ name, dims, type: u32(), offset: u64() });
  }
  const align = (kv.get('general.alignment') as number | undefined) ?? 32;
  const dataStart = Math.ceil(p / align) * align;
  return { version, kv, tensors: new Map(infos.map((t) => [t.name, { name: t.name, dims: t.dims, type: t.type, position: dataStart + t.offset }])), dataStart, bytes: b };
}

/** IEEE binary16 bits → number (exact). */
export function halfToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** A tensor's values as float64: F32 (0), F16 (1), BF16 (30), Q8_0 (8) dequantized as d·q. */
export function tensorValues(g: ReadGguf, name: string): Float64Array {
  const t = g.tensors.get(name);
  if (!t) throw new Error(`no tensor ${name}`);
  const n = t.dims.reduce((a, d) => a * d, 1);
  const out = new Float64Array(n);
  const b = g.bytes;
  for (let i = 0; i < n; i++) {
    if (t.type === 0) out[i] = b.readFloatLE(t.position + 4 * i);
    else if (t.type === 1) out[i] = halfToNumber(b.readUInt16LE(t.position + 2 * i));
    else if (t.type === 30) out[i] = new Float32Array(new Uint32Array([b.readUInt16LE(t.position + 2 * i) << 16]).buffer)[0]!;
    else if (t.type === 8) {
      const block = t.position + Math.floor(i / 32) * 34;
      out[i] = halfToNumber(b.readUInt16LE(block)) * b.readInt8(block + 2 + (i % 32));
    } else throw new Error(`type ${t.type}`);
  }
  return out;
}

/** The Q8_0 scale (f16, decoded) of the block holding element i. */
export function q8Scale(g: ReadGguf, name: string, i: number): number {
  const t = g.tensors.get(name)!;
  return halfToNumber(g.bytes.readUInt16LE(t.position + Math.floor(i / 32) * 34));
}

export const LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
export const QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
export const CHAT_TEMPLATE = "{% for m in messages %}<|start|>{{ m['role'] }}\n{{ m['content'] }}<|eot_id|>{% endfor %}";

/**
 * A byte-level BPE tokenizer.json + tokenizer_config.json: ids 0–25 "a"–"z", 26 "Ġ", 27– merges'
 * results, then two special added tokens; ids up to `vocab` − 1 beyond those stay unassigned.
 */
export function writeByteLevelTokenizer(dir: string, regex: string): { tokens: string[]; merges: string[]; bos: number; eos: number } {
  const tokens = [...'abcdefghijklmnopqrstuvwxyz', 'Ġ'];
  const merges = [['h', 'e'], ['l', 'l'], ['Ġ', 'h'], ['he', 'll'], ['Ġh', 'e']];
  for (const [a, b] of merges) tokens.push(a! + b!);
  const vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));
  const bos = tokens.length;
  const eos = bos + 1;
  const added = [
    { id: bos, content: '<|begin_of_text|>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false },
    { id: eos, content: '<|eot_id|>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false },
  ];
  const tj = {
    version: '1.0',
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false }, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] },
    post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }], pair: [], special_tokens: {} },
    decoder: { type: 'ByteLevel' },
    model: { type: 'BPE', dropout: null, unk_token: null, fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab, merges },
  };
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tj));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>', chat_template: CHAT_TEMPLATE }));
  return { tokens: [...tokens, '<|begin_of_text|>', '<|eot_id|>'], merges: merges.map(([a, b]) => `${a} ${b}`), bos, eos };
}

/**
 * A SentencePiece-style BPE tokenizer.json (Llama 2 layout: byte fallback, ▁ for spaces, no
 * ByteLevel pre-tokenizer): <unk>, <s>, </s>, three byte tokens, single pieces, then merge results.
 */
export function writeSentencePieceTokenizer(dir: string): { tokens: string[]; types: number[]; scores: number[] } {
  const merges = [['▁', 'a'], ['a', 'b'], ['▁a', 'b']];
  const tokens = ['<unk>', '<s>', '</s>', '<0x00>', '<0x01>', '<0x0A>', '▁', 'a', 'b', 'ab', '▁a', '▁ab'];
  // CONTROL 3 for the specials, BYTE 6 for <0xNN>, NORMAL 1; scores: −1000 for control, −rank of
  // the merge that makes a token, −3 (after all three merges) for the rest.
  const types = [3, 3, 3, 6, 6, 6, 1, 1, 1, 1, 1, 1];
  const scores = [-1000, -1000, -1000, -3, -3, -3, -3, -3, -3, -1, -0, -2];
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tj = {
    version: '1.0',
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }], pair: [], special_tokens: {} },
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', fuse_unk: true, byte_fallback: true, vocab: Object.fromEntries(tokens.map((t, i) => [t, i])), merges: merges.map(([a, b]) => `${a} ${b}`) },
  };
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tj));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true, add_eos_token: false }));
  return { tokens, types, scores };
}
