// Rules of the code's layout that lint cannot state: one place per concept (no exported function,
// class or constant name defined in two files of src/ or webview/, so a concept cannot drift
// into two copies that disagree, as formatBytes once did), and no source file over 600 lines.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

const repo = path.resolve(__dirname, '../..');
const MAX_LINES = 600;

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(repo, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    // generated/: build outputs (the assembled WebAssembly), not sources.
    if (e.isDirectory()) {
      if (e.name !== 'generated') out.push(...sources(rel));
    }
    else if (/\.(ts|mjs)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

const files = [...sources('src'), ...sources('webview')];
const DEFINITION = /^export\s+(?:async\s+)?(?:function\*?|const|let|class|abstract\s+class|enum)\s+([A-Za-z_$][\w$]*)/gm;

describe('layout', () => {
  it('no exported function, class or constant is defined under the same name in two files', () => {
    const where = new Map<string, string[]>();
    for (const f of files) {
      const text = fs.readFileSync(path.join(repo, f), 'utf8');
      for (const m of text.matchAll(DEFINITION)) where.set(m[1]!, [...(where.get(m[1]!) ?? []), f]);
    }
    const twice = [...where].filter(([, fs_]) => fs_.length > 1).map(([n, fs_]) => `${n}: ${fs_.join(', ')}`);
    assert.deepEqual(twice, [], `defined in more than one file:\n${twice.join('\n')}`);
  });

  it(`no source file is longer than ${MAX_LINES} lines`, () => {
    const long = files.map((f) => [f, fs.readFileSync(path.join(repo, f), 'utf8').split('\n').length] as const).filter(([, n]) => n > MAX_LINES);
    assert.deepEqual(long.map(([f, n]) => `${f}: ${n}`), []);
  });
});
