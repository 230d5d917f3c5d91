// `chatvec apply --tokenizer-source`: the fused apply with a CP model that extended the
// vocabulary. Every model's embeddings and LM head are rebuilt by token for the chosen vocabulary
// (mergekit's PermutedEmbeddings rules), so out[t] = cp[t] + (chat[t] − base[t]) by token string;
// a token only the CP has keeps the CP's row. References are float64, from the tokenizer.json
// files read here.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DemoTrio, generateDemoTrio } from '../../src/core/demo/generator';
import { runApply } from '../../src/core/engine/apply';
import { readAll } from './support/recipeFixtures';

let dir: string;
let trio: DemoTrio;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatvec-apply-tok-'));
  trio = generateDemoTrio(path.join(dir, 'demo'), 'tiny', 7);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function ids(folder: string): Map<string, number> {
  const t = JSON.parse(fs.readFileSync(path.join(folder, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> }; added_tokens?: { id: number; content: string }[] };
  const m = new Map(Object.entries(t.model.vocab));
  for (const a of t.added_tokens ?? []) m.set(a.content, a.id);
  return m;
}

describe('apply --tokenizer-source cp', () => {
  it('combines models of different vocabularies by token; CP-only tokens keep the CP row', async () => {
    const out = path.join(dir, 'out-cp');
    await runApply({ target: trio.cp, base: trio.base, chats: [trio.chat], ratios: [0.8], tokenizerSource: 'cp', out, threads: 2 });
    const [C, B, H, O] = [readAll(trio.cp), readAll(trio.base), readAll(trio.chat), readAll(out)];
    const [cpIds, baseIds, chatIds] = [ids(trio.cp), ids(trio.base), ids(trio.chat)];
    let cpOnly = 0;
    for (const name of ['model.embed_tokens.weight', 'lm_head.weight']) {
      const cp = C.get(name)!;
      const cols = cp.shape[1]!;
      assert.deepEqual(O.get(name)!.shape, cp.shape);
      const row = (t: { values: Float64Array }, r: number) => Array.from(t.values.subarray(r * cols, (r + 1) * cols));
      for (const [tok, id] of cpIds) {
        const bi = baseIds.get(tok);
        const ci = chatIds.get(tok);
        // mergekit's defaults for a model lacking the token: the only model that has it, else the base.
        const b = bi !== undefined ? row(B.get(name)!, bi) : ci !== undefined ? row(H.get(name)!, ci) : row(cp, id);
        const h = ci !== undefined ? row(H.get(name)!, ci) : bi !== undefined ? b : row(cp, id);
        if (bi === undefined && ci === undefined) cpOnly++;
        const o = row(O.get(name)!, id);
        const c = row(cp, id);
        for (let k = 0; k < cols; k++) {
          const want = c[k]! + 0.8 * (h[k]! - b[k]!);
          // The demo models are bf16: one rounding of the float32 result (half an ulp, 2⁻⁹ relative).
          if (Math.abs(o[k]! - want) > Math.abs(want) * 2 ** -8 + 1e-6) assert.fail(`${name}[${tok} = ${id}, ${k}]: got ${o[k]}, reference ${want}`);
        }
      }
    }
    assert.ok(cpOnly > 0, 'the CP has tokens of its own');
    // Other tensors: the plain fused apply.
    const name = 'model.norm.weight';
    O.get(name)!.values.forEach((v, i) => {
      const want = C.get(name)!.values[i]! + 0.8 * (H.get(name)!.values[i]! - B.get(name)!.values[i]!);
      assert.ok(Math.abs(v - want) <= Math.abs(want) * 2 ** -8 + 1e-6);
    });
    assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).vocab_size, C.get('model.embed_tokens.weight')!.shape[0]);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.partial-')), []);
  });

  it('without it the vocabularies are refused as before; with --skip-embed it is an error', async () => {
    await assert.rejects(runApply({ target: trio.cp, base: trio.base, chats: [trio.chat], out: path.join(dir, 'out-no'), threads: 2 }), /vocabularies differ/);
    await assert.rejects(runApply({ target: trio.cp, base: trio.base, chats: [trio.chat], out: path.join(dir, 'out-both'), skipEmbed: true, tokenizerSource: 'cp', threads: 2 }), /give one of them/);
  });
});
