// LoRA adapters as chat vectors (issue 15, adapters in): PEFT adapter folders written here with
// known factors, applied with `apply --vector ADAPTER` and `--base B --chat ADAPTER`, against
// float64 references computed here from the values read back: τ = scale·B·A (scale alpha/r,
// alpha/√r with rsLoRA, rank_pattern/alpha_pattern per module), (B·A)ᵀ for fan_in_fan_out and
// embedding LoRA, saved − base for modules_to_save; DoRA and other PEFT types refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DIFF_ABSOLUTE_PER_ELEMENT, DIFF_RELATIVE_BOUND } from '../../src/core/compute/diffBound';
import { lowRankChunk } from '../../src/core/compute/kernels/lowRankJs';
import { lowRankSimdKernel } from '../../src/core/compute/kernels/lowRankSimd';
import { runApply } from '../../src/core/engine/apply';
import { ChatVecError } from '../../src/core/errors';
import { runDiff } from '../../src/core/stats/diff';
import { CLI, ensureCli } from './support/builtCli';
import { loraFactors, loraTauReference, uniformValues, writeAdapter } from './support/loraFixtures';
import { type FixtureTensor, readAll, rng, writeModel } from './support/recipeFixtures';

let dir: string;
let n = 0;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-lora-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const fresh = (name: string) => path.join(dir, `${name}-${n++}`);

const values = uniformValues;

const D = 8;
const V = 16;
const MODEL: [string, number[]][] = [
  ['model.embed_tokens.weight', [V, D]],
  ...[0, 1].flatMap((i): [string, number[]][] => [
    [`model.layers.${i}.self_attn.q_proj.weight`, [D, D]],
    [`model.layers.${i}.self_attn.v_proj.weight`, [4, D]],
    [`model.layers.${i}.mlp.down_proj.weight`, [D, 12]],
    [`model.layers.${i}.input_layernorm.weight`, [D]],
  ]),
  ['model.norm.weight', [D]],
  ['lm_head.weight', [V, D]],
];

function model(seed: number, shapes: [string, number[]][] = MODEL): string {
  const r = rng(seed);
  return writeModel(fresh('model'), shapes.map(([name, shape]) => ({ name, shape, values: values(shape.reduce((a, b) => a * b, 1), r) })));
}

const adapter = (config: Record<string, unknown>, tensors: FixtureTensor[]) => writeAdapter(fresh('adapter'), config, tensors);
const factors = loraFactors;
const tauRef = loraTauReference;

function assertClose(got: Float64Array, want: Float64Array, what: string, rel = 2e-6): void {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < got.length; i++) if (Math.abs(got[i]! - want[i]!) > rel * (1 + Math.abs(want[i]!))) assert.fail(`${what}[${i}]: ${got[i]} vs ${want[i]}`);
}

const add = (x: Float64Array, y: Float64Array, r = 1) => Float64Array.from(x, (v, i) => v + r * y[i]!);

describe('the low-rank chunk kernel', () => {
  it('forms any element range of B·A and (B·A)ᵀ, rows cut anywhere, against a float64 reference', () => {
    const g = rng(1);
    const [rows, cols, rank] = [7, 5, 3];
    const A = Float32Array.from(values(rank * cols, g));
    const B = Float32Array.from(values(rows * rank, g));
    const At = Float32Array.from(values(rank * rows, g));
    const Bt = Float32Array.from(values(cols * rank, g));
    for (const [first, count] of [[0, 35], [3, 9], [4, 1], [12, 23], [34, 1]] as const) {
      const out = new Float32Array(count);
      const r0 = Math.floor(first / cols);
      lowRankChunk({ layout: 'BA', rank, rows, cols, first, count, left: B.subarray(r0 * rank), right: A }, out);
      const outT = new Float32Array(count);
      lowRankChunk({ layout: 'transposed', rank, rows, cols, first, count, left: At, right: Bt }, outT);
      for (let e = 0; e < count; e++) {
        const [i, j] = [Math.floor((first + e) / cols), (first + e) % cols];
        let s = 0;
        let st = 0;
        for (let k = 0; k < rank; k++) {
          s += B[i * rank + k]! * A[k * cols + j]!;
          st += At[k * rows + i]! * Bt[j * rank + k]!;
        }
        assert.equal(out[e], Math.fround(s), `BA [${first}+${e}]`);
        assert.equal(outT[e], Math.fround(st), `transposed [${first}+${e}]`);
      }
    }
  });

  it('the WebAssembly SIMD kernel gives the JavaScript bits, within 1 ulp of float64 (odd and even widths, ranks 1–17, rows cut anywhere)', () => {
    const simd = lowRankSimdKernel();
    assert.ok(simd, 'WebAssembly SIMD is available in this Node');
    const g = rng(2);
    /** The float32 spacing at x: one unit in the last place. */
    const ulp = (x: number) => {
      const f = Math.abs(Math.fround(x));
      const e = f === 0 ? -149 : Math.max(-149, Math.floor(Math.log2(f)) - 23);
      return 2 ** e;
    };
    let compared = 0;
    for (const [rows, cols, rank] of [[33, 29, 16], [9, 40, 1], [12, 7, 17], [5, 2, 3], [3, 1, 4]] as const) {
      // Magnitudes over several binades, both signs, so the float64 sums round differently per element.
      const v = (count: number) => Float32Array.from({ length: count }, () => (2 * g() - 1) * 2 ** Math.floor(6 * g() - 3));
      const A = v(rank * cols);
      const B = v(rows * rank);
      const At = v(rank * rows);
      const Bt = v(cols * rank);
      const total = rows * cols;
      for (const [first, count] of [[0, total], [1, total - 2], [cols - 1, Math.min(cols + 2, total - cols + 1)], [total - 1, 1], [Math.floor(total / 3), Math.ceil(total / 3)]]) {
        const r0 = Math.floor(first! / cols);
        for (const layout of ['BA', 'transposed'] as const) {
          const args = { layout, rank, rows, cols, first: first!, count: count!, left: layout === 'BA' ? B.subarray(r0 * rank) : At, right: layout === 'BA' ? A : Bt };
          const js = new Float32Array(count!);
          const got = new Float32Array(count!).fill(NaN);
          lowRankChunk(args, js);
          simd.run(args, got);
          assert.deepEqual(got, js, `${layout} ${rows}×${cols} rank ${rank} [${first}, +${count}): SIMD and JavaScript bits`);
          for (let e = 0; e < count!; e++) {
            const [i, j] = [Math.floor((first! + e) / cols), (first! + e) % cols];
            let s = 0;
            for (let k = 0; k < rank; k++) s += layout === 'BA' ? B[i * rank + k]! * A[k * cols + j]! : At[k * rows + i]! * Bt[j * rank + k]!;
            assert.ok(Math.abs(got[e]! - s) <= ulp(s), `${layout} [${first}+${e}]: ${got[e]} vs float64 ${s}`);
            compared++;
          }
        }
      }
    }
    assert.ok(compared > 3000);
  });
});

describe('apply --vector ADAPTER', () => {
  it('adds scale·B·A per module: r and lora_alpha, rank_pattern, alpha_pattern, BF16 factors, keys with and without .default', async () => {
    const cp = model(2);
    const p = (i: number, m: string) => `base_model.model.model.layers.${i}.self_attn.${m}`;
    const ad = adapter({ rank_pattern: { 'model.layers.1.self_attn.v_proj': 2 }, alpha_pattern: { v_proj: 4 }, target_modules: ['q_proj', 'v_proj'] }, [
      ...factors(p(0, 'q_proj'), 4, D, D, 3, { dtype: 'BF16' }),
      ...factors(p(1, 'q_proj'), 4, D, D, 4, { suffix: '.default' }),
      ...factors(p(0, 'v_proj'), 4, 4, D, 5),
      ...factors(p(1, 'v_proj'), 2, 4, D, 6),
    ]);
    const out = fresh('out');
    await runApply({ target: cp, vectors: [ad], ratios: [0.5], out, threads: 2 });
    const [P, O] = [readAll(cp), readAll(out)];
    const cases: [number, string, number, number, number, string[]?][] = [
      [0, 'q_proj', D, 8 / 4, 8],
      [1, 'q_proj', D, 8 / 4, 8, ['lora_A.default.weight', 'lora_B.default.weight']],
      [0, 'v_proj', 4, 4 / 4, 8],
      [1, 'v_proj', 4, 4 / 2, 8],
    ];
    for (const [i, m, rows, scale, cols, names] of cases) {
      const name = `model.layers.${i}.self_attn.${m}.weight`;
      assertClose(O.get(name)!.values, add(P.get(name)!.values, tauRef(ad, p(i, m), rows, cols, scale, false, names), 0.5), name);
    }
    for (const name of ['model.embed_tokens.weight', 'model.layers.0.mlp.down_proj.weight', 'lm_head.weight', 'model.norm.weight']) {
      assert.deepEqual(O.get(name)!.bytes, P.get(name)!.bytes, `${name} is the target's`);
    }
  });

  it('use_rslora scales by alpha/√r; embedding LoRA and fan_in_fan_out add (B·A)ᵀ', async () => {
    const cp = model(7);
    const ad = adapter({ use_rslora: true, fan_in_fan_out: true }, [
      ...factors('base_model.model.model.layers.0.mlp.down_proj', 4, D, 12, 8, { transposed: true }),
      ...factors('base_model.model.model.embed_tokens', 4, V, D, 9, { transposed: true, embedding: true }),
    ]);
    const out = fresh('out');
    await runApply({ target: cp, vectors: [ad], out, threads: 2 });
    const [P, O] = [readAll(cp), readAll(out)];
    const scale = 8 / Math.sqrt(4);
    assertClose(O.get('model.layers.0.mlp.down_proj.weight')!.values, add(P.get('model.layers.0.mlp.down_proj.weight')!.values, tauRef(ad, 'base_model.model.model.layers.0.mlp.down_proj', D, 12, scale, true)), 'down_proj (fan_in_fan_out)');
    assertClose(O.get('model.embed_tokens.weight')!.values, add(P.get('model.embed_tokens.weight')!.values, tauRef(ad, 'base_model.model.model.embed_tokens', V, D, scale, true, ['lora_embedding_A', 'lora_embedding_B'])), 'embed_tokens (embedding LoRA)');
  });

  it('modules_to_save: τ = saved − base with --base/--chat; with --vector alone a one-line error asks for the base', async () => {
    const base = model(10);
    const cp = model(11);
    const g = rng(12);
    const saved = { name: 'base_model.model.lm_head.weight', shape: [V, D], values: values(V * D, g) };
    const ad = adapter({ modules_to_save: ['lm_head'] }, [...factors('base_model.model.model.layers.0.self_attn.q_proj', 4, D, D, 13), saved]);
    await assert.rejects(runApply({ target: cp, vectors: [ad], out: fresh('out'), threads: 2 }), (e: unknown) => e instanceof ChatVecError && e.code === 'InvalidArgument' && /saves whole tensors .*lm_head\.weight.*--base BASE --chat/.test(e.message));
    const out = fresh('out');
    await runApply({ target: cp, base, chats: [ad], out, threads: 2 });
    const [B, P, O, A] = [readAll(base), readAll(cp), readAll(out), readAll(ad)];
    const tauHead = Float64Array.from(A.get('base_model.model.lm_head.weight')!.values, (v, i) => v - B.get('lm_head.weight')!.values[i]!);
    assertClose(O.get('lm_head.weight')!.values, add(P.get('lm_head.weight')!.values, tauHead), 'lm_head (modules_to_save)');
    assertClose(O.get('model.layers.0.self_attn.q_proj.weight')!.values, add(P.get('model.layers.0.self_attn.q_proj.weight')!.values, tauRef(ad, 'base_model.model.model.layers.0.self_attn.q_proj', D, D, 2, false)), 'q_proj');
  });

  it('refuses DoRA, other PEFT types, a rank that disagrees with the config, and an adapter that does not fit — before writing anything', async () => {
    const cp = model(14);
    const ok = factors('base_model.model.model.layers.0.self_attn.q_proj', 4, D, D, 15);
    const cases: [Record<string, unknown>, FixtureTensor[], RegExp][] = [
      [{ use_dora: true }, ok, /DoRA adapter \(use_dora\)/],
      [{ peft_type: 'IA3' }, ok, /peft_type IA3 is not LoRA; chatvec applies LoRA adapters only/],
      [{ r: 8 }, ok, /has rank 4 but .*adapter_config\.json gives it r = 8/],
      [{}, factors('base_model.model.model.layers.0.self_attn.v_proj', 4, D, D, 16), /does not fit .*v_proj\.weight: \[4,8\] in the model, \[8, 8\]/],
      [{}, factors('base_model.model.model.layers.9.self_attn.q_proj', 4, D, D, 17), /layers\.9\.self_attn\.q_proj\.weight: not in the model/],
      [{ rank_pattern: { '.*q_proj': 2 } }, ok, /rank_pattern key ".\*q_proj" is a regular expression/],
    ];
    for (const [config, tensors, message] of cases) {
      const ad = adapter(config, tensors);
      const out = fresh('out');
      await assert.rejects(runApply({ target: cp, vectors: [ad], out, threads: 2 }), (e: unknown) => e instanceof ChatVecError && message.test(e.message), String(message));
      assert.ok(!fs.existsSync(out), 'no output');
    }
  });
});

describe('inspect of an adapter folder (the built CLI)', () => {
  before(() => ensureCli());
  it('names it a PEFT LoRA adapter with its rank, alpha, scale, modules and base model', () => {
    const ad = adapter({ rank_pattern: { v_proj: 2 }, base_model_name_or_path: 'org/base-model', modules_to_save: ['lm_head'] }, [
      ...factors('base_model.model.model.layers.0.self_attn.q_proj', 4, D, D, 20),
      ...factors('base_model.model.model.layers.0.self_attn.v_proj', 2, 4, D, 21),
      { name: 'base_model.model.lm_head.weight', shape: [V, D], values: values(V * D, rng(22)) },
    ]);
    const r = spawnSync(process.execPath, [CLI, 'inspect', ad], { encoding: 'utf8', env: { ...process.env, CHATVEC_WORKER_SCRIPT: '' } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ {2}adapter {7}PEFT LoRA, r 4 \(also 2 by rank_pattern\), alpha 8 \(scale 2\)$/m);
    assert.match(r.stdout, /^ {2}modules {7}2 adapted: q_proj, v_proj; saved whole: lm_head\.weight$/m);
    assert.match(r.stdout, /^ {2}base model {4}org\/base-model$/m);
  });
});

describe('diff BASE ADAPTER', () => {
  it("lists each adapted tensor with ‖scale·B·A‖ formed chunk by chunk, as a diff of the base and the base with the adapter applied", async () => {
    const base = model(30);
    const p = (i: number) => `base_model.model.model.layers.${i}.self_attn.q_proj`;
    const ad = adapter({ lora_alpha: 6 }, [...factors(p(0), 4, D, D, 31), ...factors(p(1), 4, D, D, 32)]);
    const report = await runDiff({ a: base, b: ad, threads: 2 }, {}, { chunkElements: 1024 });
    assert.deepEqual(report.tensors.map((t) => t.name).sort(), ['model.layers.0.self_attn.q_proj.weight', 'model.layers.1.self_attn.q_proj.weight']);
    const B = readAll(base);
    for (const [i, t] of report.tensors.entries()) {
      const tau = tauRef(ad, p(i), D, D, 6 / 4, false);
      const w = B.get(t.name)!.values;
      const norm = Math.sqrt(tau.reduce((s, x) => s + x * x, 0));
      const normA = Math.sqrt(w.reduce((s, x) => s + x * x, 0));
      assert.ok(Math.abs(t.deltaNorm - norm) <= 1e-5 * norm, `${t.name}: ‖Δ‖ ${t.deltaNorm} vs ${norm}`);
      // Σa² lies within 2⁻¹⁹·Σa² + n·2⁻¹²³ of the float64 sum (compute/diffBound.ts): ‖A‖ within half that relative
      assert.ok(Math.abs(t.normA - normA) <= (DIFF_RELATIVE_BOUND / 2) * normA + Math.sqrt(DIFF_ABSOLUTE_PER_ELEMENT * w.length), `${t.name}: ‖A‖ ${t.normA} vs ${normA}`);
    }
    // The same figures as a diff against the merged model written to disk.
    const merged = fresh('merged');
    await runApply({ target: base, vectors: [ad], out: merged, threads: 2 });
    const materialised = await runDiff({ a: base, b: merged, threads: 2 });
    for (const t of report.tensors) {
      const m = materialised.tensors.find((x) => x.name === t.name)!;
      assert.ok(Math.abs(m.deltaNorm - t.deltaNorm) <= 1e-5 * t.deltaNorm, `${t.name}: ${m.deltaNorm} vs ${t.deltaNorm}`);
    }
    await assert.rejects(runDiff({ a: ad, threads: 2 }), /is a LoRA adapter: give the base model it was trained on first/);
  });
});
