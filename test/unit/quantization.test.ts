// Quantized checkpoints (issue 18, item 3): tiny FP8 checkpoints in DeepSeek-V3's layout (F8_E4M3
// weights with a float32 `weight_scale_inv` each, quantization_config in config.json), written
// here with arbitrary uint8 codes. apply/extract/merge refuse them before any work with one line;
// diff never calls them identical and names what it did not compare; inspect says "quantized".
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openCheckpoint } from '../../src/core/checkpoint/checkpoint';
import { quantizationOf } from '../../src/core/checkpoint/quantization';
import { checkRecipeText } from '../../src/core/recipes/recipe';
import { CLI, ensureCli } from './support/builtCli';
import { type TensorData, encodeAll, rng, tempDir, writeModel } from './support/engineFixtures';

const H = 4;
const V = 8;
const FP8_CONFIG = { architectures: ['DeepseekV3ForCausalLM'], model_type: 'deepseek_v3', quantization_config: { quant_method: 'fp8', fmt: 'e4m3', activation_scheme: 'dynamic', weight_block_size: [128, 128] } };
const BF16_CONFIG = { architectures: ['DeepseekV3ForCausalLM'], model_type: 'deepseek_v3' };

function values(n: number, seed: number): number[] {
  const r = rng(seed);
  // Multiples of 1/64 in [-1, 1): exact in BF16, so the written values are these.
  return Array.from({ length: n }, () => Math.round((r() * 2 - 1) * 64) / 64);
}

function codes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256) & 0x7e); // finite E4M3 codes
}

/** The float tensors every fixture shares (the same values in all of them). */
function floats(): TensorData[] {
  return [
    { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [V, H], values: values(V * H, 1) },
    { name: 'model.layers.0.input_layernorm.weight', dtype: 'BF16', shape: [H], values: values(H, 2) },
    { name: 'model.norm.weight', dtype: 'BF16', shape: [H], values: values(H, 3) },
    { name: 'lm_head.weight', dtype: 'BF16', shape: [V, H], values: values(V * H, 4) },
  ];
}

const PROJ = ['q_proj', 'o_proj'].map((p) => `model.layers.0.self_attn.${p}`);

/** An FP8 checkpoint: each projection as E4M3 codes plus a float32 [1, 1] weight_scale_inv. */
function fp8Model(dir: string, codeSeed: number, scale: number): string {
  const tensors: TensorData[] = [...floats()];
  PROJ.forEach((p, i) => {
    tensors.push({ name: `${p}.weight`, dtype: 'F8_E4M3', shape: [H, H], bytes: codes(H * H, codeSeed + i) });
    tensors.push({ name: `${p}.weight_scale_inv`, dtype: 'F32', shape: [1, 1], bytes: encodeAll([scale], 'F32') });
  });
  return writeModel(dir, tensors, { files: { 'config.json': FP8_CONFIG } });
}

/** A BF16 checkpoint with the same float tensors and BF16 projections (its "dequantised" release). */
function bf16Model(dir: string, seed: number): string {
  const tensors: TensorData[] = [...floats(), ...PROJ.map((p, i): TensorData => ({ name: `${p}.weight`, dtype: 'BF16', shape: [H, H], values: values(H * H, seed + i) }))];
  return writeModel(dir, tensors, { files: { 'config.json': BF16_CONFIG } });
}

let root: string;
let fp8: string;
let fp8Chat: string;
let bf16: string;
let bf16Chat: string;

before(() => {
  ensureCli();
  root = tempDir('fp8-');
  fp8 = fp8Model(path.join(root, 'fp8-base'), 10, 0.5);
  // The same codes, other scales: the case that used to "succeed" by adding the scales as floats.
  fp8Chat = fp8Model(path.join(root, 'fp8-chat'), 10, 0.75);
  bf16 = bf16Model(path.join(root, 'bf16-base'), 20);
  bf16Chat = bf16Model(path.join(root, 'bf16-chat'), 30);
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

function chatvec(...args: string[]) {
  const env = { ...process.env };
  delete env.CHATVEC_DEBUG;
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: root, encoding: 'utf8', env, timeout: 60_000 });
  assert.equal(r.error, undefined);
  return r;
}

/** The refusal: a failing exit code, one line naming the checkpoint and the rule. */
function assertRefused(r: ReturnType<typeof chatvec>, checkpoint: string): void {
  assert.equal(r.status, 1, r.stdout + r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assertRefusalLine(lines[0]!, checkpoint);
}

function assertRefusalLine(line: string, checkpoint: string): void {
  assert.ok(line.includes(`${checkpoint}: FP8-quantized checkpoint (F8_E4M3 weights with weight_scale_inv, quantization_config.quant_method fp8)`), line);
  assert.match(line, /chatvec does arithmetic on BF16\/F16\/F32 weights only — use a BF16\/F16 release of the model or dequantize it first$/);
}

describe('quantizationOf', () => {
  it('finds FP8 codes and their scales from the headers and config.json', () => {
    const q = quantizationOf(openCheckpoint(fp8));
    assert.ok(q);
    assert.equal(q.kind, 'fp8');
    assert.equal(q.evidence, 'F8_E4M3 weights with weight_scale_inv, quantization_config.quant_method fp8');
    assert.deepEqual([...q.tensors.keys()].sort(), PROJ.flatMap((p) => [`${p}.weight`, `${p}.weight_scale_inv`]).sort());
  });

  it('a BF16 model, or one whose config names a method but holds only float weights, is not quantized', () => {
    assert.equal(quantizationOf(openCheckpoint(bf16)), null);
    const dense = bf16Model(path.join(root, 'dense-with-config'), 20);
    fs.writeFileSync(path.join(dense, 'config.json'), JSON.stringify({ ...BF16_CONFIG, quantization_config: { quant_method: 'compressed-tensors', format: 'dense' } }));
    assert.equal(quantizationOf(openCheckpoint(dense)), null);
  });

  it('names the config method for integer formats (GPTQ: I32 qweight with scales and qzeros)', () => {
    const dir = writeModel(
      path.join(root, 'gptq'),
      [
        ...floats(),
        { name: 'model.layers.0.self_attn.q_proj.qweight', dtype: 'I32', shape: [1, H], bytes: new Uint8Array(4 * H) },
        { name: 'model.layers.0.self_attn.q_proj.qzeros', dtype: 'I32', shape: [1, 1], bytes: new Uint8Array(4) },
        { name: 'model.layers.0.self_attn.q_proj.scales', dtype: 'F16', shape: [1, H], values: [1, 1, 1, 1] },
      ],
      { files: { 'config.json': { ...BF16_CONFIG, quantization_config: { quant_method: 'gptq', bits: 4 } } } },
    );
    const q = quantizationOf(openCheckpoint(dir));
    assert.ok(q);
    assert.equal(q.kind, 'gptq');
    assert.equal(q.evidence, 'I32 weights with qzeros, scales, quantization_config.quant_method gptq');
    assert.equal(q.tensors.size, 3);
    // Without the scales and the config, an integer tensor may be any buffer: not evidence.
    const bare = writeModel(path.join(root, 'int-buffer'), [...floats(), { name: 'model.layers.0.self_attn.q_proj.qweight', dtype: 'I32', shape: [1, H], bytes: new Uint8Array(4 * H) }], { files: { 'config.json': BF16_CONFIG } });
    assert.equal(quantizationOf(openCheckpoint(bare)), null);
  });
});

describe('apply, extract and merge refuse a quantized checkpoint up front', () => {
  it('apply (fused): FP8 base and chat, BF16 target', () => {
    const out = path.join(root, 'out-apply');
    assertRefused(chatvec('apply', '--target', bf16, '--base', fp8, '--chat', fp8Chat, '--out', out, '--threads', '1'), fp8);
    assert.equal(fs.existsSync(out), false, 'no output folder');
  });

  it('apply: an FP8 target with BF16 base and chat', () => {
    const out = path.join(root, 'out-apply-target');
    assertRefused(chatvec('apply', '--target', fp8, '--base', bf16, '--chat', bf16Chat, '--out', out, '--threads', '1'), fp8);
    assert.equal(fs.existsSync(out), false, 'no output folder');
  });

  it('extract: FP8 chat', () => {
    const out = path.join(root, 'out-extract');
    assertRefused(chatvec('extract', '--base', bf16, '--chat', fp8Chat, '--out', out, '--threads', '1'), fp8Chat);
    assert.equal(fs.existsSync(out), false, 'no output folder');
  });

  it('merge and merge --dry-run: the error is at the model line of the recipe', () => {
    const recipe = path.join(root, 'ta.yaml');
    fs.writeFileSync(recipe, `merge_method: task_arithmetic\nbase_model: bf16-base\nmodels:\n  - model: bf16-chat\n    parameters:\n      weight: 0.5\n  - model: fp8-chat\n    parameters:\n      weight: 0.5\n`);
    const out = path.join(root, 'out-merge');
    for (const args of [['--out', out], ['--dry-run']]) {
      const r = chatvec('merge', recipe, ...args, '--threads', '1');
      // The recipe's error report (exit code 2, as for every recipe error): a count, then each
      // issue as FILE:LINE:COL: error: message.
      assert.equal(r.status, 2, r.stdout + r.stderr);
      const at = r.stderr.split('\n').filter((l) => l.startsWith(`${recipe}:`));
      assert.equal(at.length, 1, r.stderr);
      assert.ok(at[0]!.startsWith(`${recipe}:7:12: error: `), `at the fp8 model's line: ${at[0]}`);
      assertRefusalLine(at[0]!, fp8Chat);
      assert.doesNotMatch(r.stdout, /copied/);
    }
    assert.equal(fs.existsSync(out), false, 'no output folder');
  });

  it('recipe diagnostics: an error issue at the quantized model\'s path, for the editor', () => {
    const c = checkRecipeText(`merge_method: chat_vector\nbase_model: fp8-base\ntarget_model: bf16-base\nchat_models:\n  - model: fp8-chat\n`, { baseDir: root });
    assert.equal(c.plan, null);
    const errors = c.issues.filter((i) => i.severity === 'error');
    assert.deepEqual(
      errors.map((i) => [i.path, /FP8-quantized checkpoint/.test(i.message)]),
      [
        [['base_model'], true],
        [['chat_models', 0, 'model'], true],
      ],
    );
  });
});

describe('diff never calls a quantized pair identical', () => {
  it('FP8 base vs a BF16 release with the same float tensors: not identical, the FP8 weights named as not compared', () => {
    const r = chatvec('diff', fp8, bf16, '--json', '--no-cache', '--threads', '1');
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { verdict: string; lineage: { kind: string }; skipped: { name: string; reason: string }[]; onlyInA: string[]; tensors: { name: string }[] };
    assert.doesNotMatch(report.verdict, /identical/);
    assert.equal(report.lineage.kind, 'equalWhereCompared');
    assert.match(report.verdict, /^no compared element differs, but 4 tensors were not compared/);
    assert.deepEqual(report.skipped.map((s) => s.name), PROJ.map((p) => `${p}.weight`));
    for (const s of report.skipped) assert.match(s.reason, /^quantized weight \(F8_E4M3 \/ BF16\)$/);
    assert.deepEqual(report.onlyInA, PROJ.map((p) => `${p}.weight_scale_inv`));
    const text = chatvec('diff', fp8, bf16, '--no-cache', '--threads', '1');
    assert.equal(text.status, 0, text.stderr);
    assert.doesNotMatch(text.stdout, /identical/);
    assert.match(text.stdout, /note {5}2 tensors not compared: model\.layers\.0\.self_attn\.q_proj\.weight \(quantized weight/);
  });

  it('two FP8 checkpoints with the same codes and other scales: the scales are not shown as the modules\' change', () => {
    const r = chatvec('diff', fp8, fp8Chat, '--json', '--no-cache', '--threads', '1');
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { verdict: string; skipped: { name: string; reason: string }[]; tensors: { name: string }[]; groups: { label: string; modules: { module: string }[] }[] };
    assert.doesNotMatch(report.verdict, /identical/);
    assert.deepEqual(report.tensors.map((t) => t.name).sort(), floats().map((t) => t.name).sort(), 'only the float weights are compared');
    assert.deepEqual(report.skipped.map((s) => s.name).sort(), PROJ.flatMap((p) => [`${p}.weight`, `${p}.weight_scale_inv`]).sort());
    for (const s of report.skipped) assert.match(s.reason, s.name.endsWith('_scale_inv') ? /^scale or state of a quantized weight \(F32 \/ F32\)$/ : /^quantized weight \(F8_E4M3 \/ F8_E4M3\)$/);
    const layer0 = report.groups.find((g) => g.label === 'Layer 0')!;
    assert.deepEqual(layer0.modules.map((m) => m.module), ['norm'], 'no q/o rows made of scales');
  });
});

describe('inspect', () => {
  it('says "quantized: FP8 (…)" with the evidence, in text and JSON', () => {
    const r = chatvec('inspect', fp8);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\n {2}quantized {5}FP8 \(F8_E4M3 weights with weight_scale_inv, quantization_config\.quant_method fp8\); 4 tensors of codes and scales: diff does not compare them/);
    const j = JSON.parse(chatvec('inspect', fp8, '--json').stdout) as { quantization: { label: string; tensors: string[] } | null };
    assert.equal(j.quantization?.label, 'FP8');
    assert.equal(j.quantization?.tensors.length, 4);
    const plain = chatvec('inspect', bf16);
    assert.doesNotMatch(plain.stdout, /quantized/);
  });
});
