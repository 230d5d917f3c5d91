/**
 * `runDiff` against an independent float64 reference: hand-made checkpoints with dtype mixes,
 * NaN/Inf, shape mismatches and one-sided tensors; the demo trio; chat-vector folders; the cache;
 * cancellation.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { classifyTensors, groupLabel } from '../../src/core/checkpoint/layers';
import { generateDemoTrio } from '../../src/core/demo/generator';
import type { DiffReport } from '../../src/core/jobs/types';
import { runDiff } from '../../src/core/stats/diff';
import { RefSums, type HandTensor, assertStatsClose, randomValues, readAllTensors, tempDir, writeHandCheckpoint } from './support/diffReference';
import { formatVerdict } from '../../src/protocol/verdictText';

const root = tempDir('chatvec-diff-');
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** Checks every tensor, group, module and the total of `r` against the reference over A and B. */
function checkAgainstReference(r: DiffReport, aDir: string, bDir: string | null, opts: { vectorBase?: string | null } = {}): void {
  const A = readAllTensors(aDir);
  const B = bDir ? readAllTensors(bDir) : null;
  const base = opts.vectorBase ? readAllTensors(opts.vectorBase) : null;
  const groups = classifyTensors([...A.keys()]);
  const groupRefs = new Map<string, RefSums>();
  const moduleRefs = new Map<string, RefSums>();
  const total = new RefSums();
  for (const t of r.tensors) {
    const ta = A.get(t.name)!;
    let ref: RefSums;
    if (B) {
      const tb = B.get(t.name)!;
      const rows = Math.min(ta.shape[0] ?? 1, tb.shape[0] ?? 1);
      const count = ta.shape.length === 0 ? 1 : (rows * ta.values!.length) / ta.shape[0]!;
      ref = new RefSums().addPairs(ta.values, tb.values!, count);
    } else {
      const bt = base?.get(t.name);
      ref = new RefSums().addPairs(bt ? bt.values : null, ta.values!, ta.values!.length, true);
    }
    assertStatsClose(t, ref.stats(), `tensor ${t.name}`);
    const g = groups.get(t.name)!;
    const label = groupLabel(g);
    assert.equal(t.role, g.role);
    assert.equal(t.module, g.module);
    if (!groupRefs.has(label)) groupRefs.set(label, new RefSums());
    groupRefs.get(label)!.merge(ref);
    const mk = `${label}/${g.module}`;
    if (!moduleRefs.has(mk)) moduleRefs.set(mk, new RefSums());
    moduleRefs.get(mk)!.merge(ref);
    total.merge(ref);
  }
  assert.deepEqual(r.groups.map((g) => g.label).sort(), [...groupRefs.keys()].sort());
  for (const g of r.groups) {
    assertStatsClose(g, groupRefs.get(g.label)!.stats(), `group ${g.label}`);
    for (const m of g.modules) assertStatsClose(m, moduleRefs.get(`${g.label}/${m.module}`)!.stats(), `module ${g.label}/${m.module}`);
    assert.equal(g.modules.reduce((s, m) => s + m.elements, 0), g.elements);
  }
  assertStatsClose(r.total, total.stats(), 'total');
}

describe('diff of hand-made checkpoints (dtype mixes, NaN/Inf, shapes, one-sided tensors)', () => {
  const aDir = path.join(root, 'hand-a');
  const bDir = path.join(root, 'hand-b');
  let report: DiffReport;

  before(async () => {
    const q = randomValues(40 * 30, 1, 0.2);
    const up = randomValues(50 * 20, 2, 0.5);
    const upB = up.map((v, i) => (i % 3 === 0 ? v : v + 0.01 * Math.sin(i)));
    upB[7] = NaN;
    upB[100] = Infinity;
    const upA = [...up];
    upA[200] = -Infinity;
    upA[7] = NaN; // NaN on both sides at the same place counts once
    const emb = randomValues(100 * 16, 3, 0.05);
    const embB = [...emb.map((v, i) => v + 1e-3 * Math.cos(i)), ...randomValues(20 * 16, 4, 0.05)];
    const shared = randomValues(30 * 30, 5, 0.1);
    const a: HandTensor[] = [
      { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [100, 16], values: emb },
      { name: 'model.layers.0.self_attn.q_proj.weight', dtype: 'F32', shape: [40, 30], values: q },
      { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F16', shape: [50, 20], values: upA },
      { name: 'model.layers.0.input_layernorm.weight', dtype: 'BF16', shape: [30], values: randomValues(30, 6, 0.1).map((v) => 1 + v) },
      { name: 'model.layers.1.self_attn.q_proj.weight', dtype: 'BF16', shape: [30, 30], values: shared },
      { name: 'model.layers.1.self_attn.k_proj.weight', dtype: 'F64', shape: [10, 30], values: randomValues(300, 7, 0.1) },
      { name: 'model.layers.1.extra.bias', dtype: 'F32', shape: [30], values: randomValues(30, 8) },
      { name: 'model.layers.1.step', dtype: 'I64', shape: [2], values: [1, 2] },
      { name: 'model.norm.weight', dtype: 'F32', shape: [16], values: randomValues(16, 9, 0.1).map((v) => 1 + v) },
      { name: 'lm_head.weight', dtype: 'BF16', shape: [100, 16], values: randomValues(1600, 10, 0.05) },
    ];
    const b: HandTensor[] = [
      { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [120, 16], values: embB },
      // F32 in A vs BF16 in B: B is A rounded to bf16 plus a change
      { name: 'model.layers.0.self_attn.q_proj.weight', dtype: 'BF16', shape: [40, 30], values: q.map((v, i) => v * (1 + 0.02 * Math.sin(i))) },
      { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F16', shape: [50, 20], values: upB },
      { name: 'model.layers.0.input_layernorm.weight', dtype: 'F32', shape: [30], values: randomValues(30, 6, 0.1).map((v) => 1.001 + v) },
      { name: 'model.layers.1.self_attn.q_proj.weight', dtype: 'BF16', shape: [30, 30], values: shared }, // unchanged
      { name: 'model.layers.1.self_attn.k_proj.weight', dtype: 'F32', shape: [10, 30], values: randomValues(300, 7, 0.1).map((v) => v + 1e-4) },
      { name: 'model.layers.1.step', dtype: 'I64', shape: [2], values: [1, 3] },
      { name: 'model.layers.1.new.weight', dtype: 'F32', shape: [4], values: [1, 2, 3, 4] },
      { name: 'model.norm.weight', dtype: 'F16', shape: [16], values: randomValues(16, 9, 0.1).map((v) => 1 + v) },
      { name: 'lm_head.weight', dtype: 'BF16', shape: [100, 8], values: randomValues(800, 11, 0.05) },
    ];
    writeHandCheckpoint(aDir, a);
    writeHandCheckpoint(bDir, b, 3000); // B sharded: several files with an index
    assert.ok(fs.existsSync(path.join(bDir, 'model.safetensors.index.json')));
    // 1024-element chunks: the larger tensors are split over several worker tasks.
    report = await runDiff({ a: aDir, b: bDir, threads: 2 }, {}, { chunkElements: 1024 });
  });

  it('matches the float64 reference for every tensor, module, group and the total', () => {
    checkAgainstReference(report, aDir, bDir);
  });

  it('lists one-sided tensors, shape mismatches and skipped tensors', () => {
    assert.deepEqual(report.onlyInA, ['model.layers.1.extra.bias']);
    assert.deepEqual(report.onlyInB, ['model.layers.1.new.weight']);
    assert.deepEqual(
      report.shapeMismatches.map((m) => [m.name, m.shapeA, m.shapeB]),
      [
        ['model.embed_tokens.weight', [100, 16], [120, 16]],
        ['lm_head.weight', [100, 16], [100, 8]],
      ],
    );
    const emb = report.tensors.find((t) => t.name === 'model.embed_tokens.weight')!;
    assert.equal(emb.elements, 100 * 16);
    assert.match(emb.note ?? '', /100 leading rows/);
    assert.ok(!report.tensors.some((t) => t.name === 'lm_head.weight'), 'trailing dims differ: not compared');
    assert.deepEqual(report.skipped?.map((s) => s.name).sort(), ['lm_head.weight', 'model.layers.1.step']);
    assert.equal(report.tensors.find((t) => t.name === 'model.embed_tokens.weight')!.shapeB[0], 120);
  });

  it('counts NaN/Inf positions and leaves them out of the sums', () => {
    const up = report.tensors.find((t) => t.name === 'model.layers.0.mlp.up_proj.weight')!;
    assert.equal(up.nonFinite, 3);
    assert.ok(Number.isFinite(up.deltaNorm) && Number.isFinite(up.normA) && Number.isFinite(up.cosine));
    assert.equal(report.total.nonFinite, 3);
    assert.match(formatVerdict(report.lineage), /3 NaN\/Inf values left out/);
  });

  it('reports an unchanged tensor as unchanged', () => {
    const same = report.tensors.find((t) => t.name === 'model.layers.1.self_attn.q_proj.weight')!;
    assert.equal(same.deltaNorm, 0);
    assert.equal(same.changedFraction, 0);
    assert.equal(same.maxAbsDelta, 0);
    assert.ok(Math.abs(same.cosine - 1) < 1e-12);
  });

  it('reads a large task in pieces and still matches the reference', async () => {
    // 4096-element tasks read 1024 elements at a time: the 1600-element embedding is one task of two pieces.
    const pieces = await runDiff({ a: aDir, b: bDir, threads: 2 }, {}, { chunkElements: 4096, pieceElements: 1024 });
    checkAgainstReference(pieces, aDir, bDir);
    assert.equal(pieces.total.nonFinite, 3);
  });

  it('gives the same figures whatever the chunk size and thread count', async () => {
    const other = await runDiff({ a: aDir, b: bDir, threads: 1 });
    for (let i = 0; i < report.tensors.length; i++) assertStatsClose(other.tensors[i]!, report.tensors[i]!, report.tensors[i]!.name, 1e-12);
    assertStatsClose(other.total, report.total, 'total', 1e-12);
  });
});

describe('diff of the demo trio', () => {
  let trio: ReturnType<typeof generateDemoTrio>;
  let chat: DiffReport;
  before(async () => {
    trio = generateDemoTrio(path.join(root, 'demo'), 'tiny', 7);
    chat = await runDiff({ a: trio.base, b: trio.chat, threads: 2 });
  });

  it('base → chat matches the float64 reference', () => {
    checkAgainstReference(chat, trio.base, trio.chat);
  });

  it('base → chat: the relative change grows with depth and the verdict says fine-tune', () => {
    const layers = chat.groups.filter((g) => g.role === 'layer');
    assert.equal(layers.length, 4);
    for (let i = 1; i < layers.length; i++) {
      assert.equal(layers[i]!.layer, i);
      assert.ok(layers[i]!.relative > layers[i - 1]!.relative, `layer ${i}: ${layers[i]!.relative} ≤ ${layers[i - 1]!.relative}`);
    }
    assert.deepEqual(chat.groups.map((g) => g.label), ['Embeddings', 'Layer 0', 'Layer 1', 'Layer 2', 'Layer 3', 'Final norm', 'LM head']);
    assert.deepEqual(layers[0]!.modules.map((m) => m.module), ['q', 'k', 'v', 'o', 'gate', 'up', 'down', 'norm']);
    assert.match(formatVerdict(chat.lineage), /^B looks fine-tuned from A: relative change \d+\.\d+ % \(weight matrices\)$/);
    // The chart's headline names the models instead of A and B.
    assert.match(formatVerdict(chat.lineage, { a: 'tiny-base', b: 'tiny-chat' }), /^tiny-chat looks fine-tuned from tiny-base: relative change \d+\.\d+ % \(weight matrices\)$/);
    assert.equal(chat.fromCache, false);
  });

  it('aggregates are exact sums over tensors, not averages of norms', () => {
    for (const g of chat.groups) {
      const members = chat.tensors.filter((t) => groupLabel({ role: t.role, module: t.module, ...(t.layer !== null ? { layer: t.layer } : {}) }) === g.label);
      const d2 = members.reduce((s, t) => s + t.deltaNorm ** 2, 0);
      const a2 = members.reduce((s, t) => s + t.normA ** 2, 0);
      assert.ok(Math.abs(g.deltaNorm - Math.sqrt(d2)) <= 1e-9 * g.deltaNorm, g.label);
      assert.ok(Math.abs(g.normA - Math.sqrt(a2)) <= 1e-9 * g.normA, g.label);
      assert.equal(g.elements, members.reduce((s, t) => s + t.elements, 0));
      assert.equal(g.maxAbsDelta, Math.max(...members.map((t) => t.maxAbsDelta)));
    }
  });

  it('base → cp compares the shared vocabulary rows and says so', async () => {
    const r = await runDiff({ a: trio.base, b: trio.cp, threads: 2 });
    checkAgainstReference(r, trio.base, trio.cp);
    assert.deepEqual(r.shapeMismatches.map((m) => m.name), ['model.embed_tokens.weight', 'lm_head.weight']);
    for (const m of r.shapeMismatches) {
      const t = r.tensors.find((x) => x.name === m.name)!;
      assert.equal(t.elements, 512 * 64);
      assert.match(t.note!, /512 leading rows/);
    }
  });

  it('a model against itself is identical; two different seeds are unrelated', async () => {
    const same = await runDiff({ a: trio.base, b: trio.base, threads: 1 });
    assert.match(formatVerdict(same.lineage), /^identical weights/);
    assert.equal(same.total.deltaNorm, 0);
    assert.equal(same.total.changedFraction, 0);
    const other = generateDemoTrio(path.join(root, 'demo-other'), 'tiny', 8);
    const unrelated = await runDiff({ a: trio.base, b: other.base, threads: 2 });
    assert.match(formatVerdict(unrelated.lineage), /^unrelated weights: cosine -?0\.0\d \(weight matrices\)$/);
  });
});

describe('diff of a chat-vector folder alone', () => {
  let trio: ReturnType<typeof generateDemoTrio>;
  const vec = path.join(root, 'vector');
  before(() => {
    trio = generateDemoTrio(path.join(root, 'demo'), 'tiny', 7);
    // A stored vector τ = chat − base in F32 (as `chatvec extract` writes it).
    const base = readAllTensors(trio.base);
    const chat = readAllTensors(trio.chat);
    const tensors: HandTensor[] = [...base.entries()]
      .filter(([name]) => name !== 'lm_head.weight') // as if extracted with --skip-embed for the head
      .map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, values: Array.from(chat.get(name)!.values!, (v, i) => v - t.values![i]!) }));
    writeHandCheckpoint(vec, tensors);
    fs.writeFileSync(path.join(vec, 'chatvector.json'), JSON.stringify({ base: trio.base, chat: trio.chat }));
  });

  it('uses the base named in chatvector.json as A', async () => {
    const r = await runDiff({ a: vec, threads: 2 });
    assert.equal(r.b, null);
    assert.equal(r.base, trio.base);
    checkAgainstReference(r, vec, null, { vectorBase: trio.base });
    assert.deepEqual(r.onlyInB, ['lm_head.weight']);
    assert.match(formatVerdict(r.lineage), /^chat vector: ‖Δ‖ [\d.]+, relative to its base \d+\.\d+ %$/);
    // Δ equals chat − base, so its layer norms equal those of the two-model diff.
    const pair = await runDiff({ a: trio.base, b: trio.chat, threads: 2 });
    for (const g of r.groups) assertStatsClose(g, { ...pair.groups.find((p) => p.label === g.label)! }, g.label, 1e-6);
  });

  it('without its base: ‖Δ‖ only, relative and cosine unknown', async () => {
    const lone = path.join(root, 'vector-lone');
    fs.cpSync(vec, lone, { recursive: true });
    fs.writeFileSync(path.join(lone, 'chatvector.json'), JSON.stringify({ base: path.join(root, 'gone') }));
    const logs: string[] = [];
    const r = await runDiff({ a: lone, threads: 2 }, { onLog: (_l, m) => logs.push(m) });
    assert.equal(r.base, null);
    checkAgainstReference(r, lone, null);
    assert.ok(Number.isNaN(r.total.relative) && Number.isNaN(r.total.cosine) && Number.isNaN(r.total.normA));
    assert.ok(r.total.deltaNorm > 0);
    assert.match(formatVerdict(r.lineage), /base not found/);
    assert.ok(logs.some((m) => /was not found/.test(m)));
  });

  it('refuses a plain checkpoint without a second one', async () => {
    await assert.rejects(runDiff({ a: trio.base }), (e: { code?: string; message: string }) => e.code === 'InvalidArgument' && /chatvector\.json/.test(e.message));
  });
});

describe('diff cache', () => {
  let trio: ReturnType<typeof generateDemoTrio>;
  before(() => {
    trio = generateDemoTrio(path.join(root, 'demo'), 'tiny', 7);
  });
  const stripTiming = (r: DiffReport) => ({ ...r, seconds: 0, fromCache: false });

  it('returns a stored result for the same files and recomputes when a shard changes', async () => {
    const cacheDir = path.join(root, 'cache1');
    const first = await runDiff({ a: trio.base, b: trio.chat, cacheDir, threads: 2 });
    assert.equal(first.fromCache, false);
    assert.equal(fs.readdirSync(cacheDir).length, 1);
    let progress = 0;
    const second = await runDiff({ a: trio.base, b: trio.chat, cacheDir, threads: 2 }, { onProgress: () => progress++ });
    assert.equal(second.fromCache, true);
    assert.equal(progress, 0, 'a cache hit reads no tensor data');
    assert.deepStrictEqual(stripTiming(second), stripTiming(first));
    // The reverse pair is a different question.
    assert.equal((await runDiff({ a: trio.chat, b: trio.base, cacheDir, threads: 2 })).fromCache, false);

    const shard = path.join(trio.chat, 'model.safetensors');
    const st = fs.statSync(shard);
    fs.utimesSync(shard, st.atime, new Date(st.mtimeMs + 5000));
    const third = await runDiff({ a: trio.base, b: trio.chat, cacheDir, threads: 2 });
    assert.equal(third.fromCache, false, 'a touched shard invalidates');
    assert.deepStrictEqual(stripTiming(third), stripTiming(first));
    assert.equal((await runDiff({ a: trio.base, b: trio.chat, cacheDir, threads: 2 })).fromCache, true);
  });

  it('ignores and rewrites a corrupt entry; keeps NaN figures through the cache', async () => {
    const cacheDir = path.join(root, 'cache2');
    const first = await runDiff({ a: trio.base, b: trio.chat, cacheDir, threads: 2 });
    const [entry] = fs.readdirSync(cacheDir);
    const file = path.join(cacheDir, entry!);
    for (const garbage of ['{"format":"chatvec-diff"', '{"format":"chatvec-diff","version":1,"key":"x","report":{}}', '']) {
      fs.writeFileSync(file, garbage);
      const again = await runDiff({ a: trio.base, b: trio.chat, cacheDir, threads: 2 });
      assert.equal(again.fromCache, false);
      assert.deepStrictEqual(stripTiming(again), stripTiming(first));
      assert.doesNotThrow(() => JSON.parse(fs.readFileSync(file, 'utf8')), 'rewritten');
    }
    assert.deepEqual(fs.readdirSync(cacheDir), [entry], 'no temporary files left');

    const lone = path.join(root, 'vector-cache');
    writeHandCheckpoint(lone, [{ name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F32', shape: [2, 2], values: [0, 1, 0, -2] }]);
    fs.writeFileSync(path.join(lone, 'chatvector.json'), JSON.stringify({ base: path.join(root, 'nowhere') }));
    const v1 = await runDiff({ a: lone, cacheDir, threads: 1 });
    const v2 = await runDiff({ a: lone, cacheDir, threads: 1 });
    assert.equal(v2.fromCache, true);
    assert.ok(Number.isNaN(v2.total.relative) && Number.isNaN(v2.tensors[0]!.cosine));
    assert.equal(v2.total.deltaNorm, Math.sqrt(5));
    assert.deepStrictEqual(stripTiming(v2), stripTiming(v1));
  });
});

describe('diff cancellation', () => {
  it('stops mid-run with Cancelled and stores nothing', async () => {
    const trio = generateDemoTrio(path.join(root, 'demo'), 'tiny', 7);
    const cacheDir = path.join(root, 'cache-cancel');
    let checks = 0;
    let progressed = 0;
    const signal = {
      get cancelled() {
        return ++checks > 20; // after a few tasks were handed out
      },
    };
    await assert.rejects(
      runDiff({ a: trio.base, b: trio.chat, cacheDir, threads: 2 }, { signal, onProgress: (e) => (progressed = e.done) }, { chunkElements: 1024 }),
      (e: { code?: string }) => e.code === 'Cancelled',
    );
    assert.ok(progressed < readAllBytes(trio.base) + readAllBytes(trio.chat), 'stopped before the end');
    assert.ok(!fs.existsSync(cacheDir) || fs.readdirSync(cacheDir).length === 0, 'nothing stored');
  });

  it('a cancel before the start throws at once', async () => {
    const trio = generateDemoTrio(path.join(root, 'demo'), 'tiny', 7);
    await assert.rejects(runDiff({ a: trio.base, b: trio.chat }, { signal: { cancelled: true } }), (e: { code?: string }) => e.code === 'Cancelled');
  });
});

function readAllBytes(dir: string): number {
  return fs.readdirSync(dir).filter((n) => n.endsWith('.safetensors')).reduce((s, n) => s + fs.statSync(path.join(dir, n)).size, 0);
}
