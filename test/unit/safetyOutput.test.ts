// The output-path rules (issue 11, cases 1 and 8): `--out` and `--overwrite` can never destroy an
// input, the working folder, the home folder or anything the tool did not write — run as users run
// it (the real CLI in its own process, real folders, symlinks), checking that nothing was touched.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { generateDemoTrio } from '../../src/core/demo/generator';
import { runApply } from '../../src/core/engine/apply';
import { OUTPUT_MARKER } from '../../src/core/io/outputGuard';
import { assertNothingLeft, hashTree, rejectsWith, tempDir } from './support/engineFixtures';

const repo = path.resolve(__dirname, '../..');
let root: string;
/** A user's working folder: the three demo models, a vector, and unrelated files. */
let work: string;
let home: string;
let snapshot: Map<string, string>;

function chatvec(cwd: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(require.resolve('tsx')).href, path.join(repo, 'src/cli/main.ts'), ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, HOME: home, CHATVEC_WORKER_SCRIPT: path.join(repo, 'test/unit/support/tsxWorker.cjs'), NODE_OPTIONS: '' },
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a command that must be refused: exit 2, one line naming the rule, and the work folder untouched. */
function refused(cwd: string, pattern: RegExp, ...args: string[]): void {
  const r = chatvec(cwd, ...args);
  assert.equal(r.status, 2, `exit ${r.status}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.deepEqual(hashTree(work), snapshot, 'nothing in the work folder changed');
}

before(() => {
  root = tempDir('out-rules');
  home = path.join(root, 'home');
  work = path.join(home, 'work');
  fs.mkdirSync(work, { recursive: true });
  const trio = generateDemoTrio(path.join(work, 'models'), 'tiny', 5);
  for (const [k, v] of Object.entries({ base: trio.base, chat: trio.chat, cp: trio.cp })) fs.renameSync(v, path.join(work, k));
  fs.rmSync(path.join(work, 'models'), { recursive: true });
  fs.writeFileSync(path.join(work, 'notes.txt'), 'my unrelated file');
  fs.writeFileSync(path.join(home, '.bashrc'), '# my settings');
  const r = chatvec(work, 'extract', '--base', 'base', '--chat', 'chat', '--out', 'vector', '--quiet');
  assert.equal(r.status, 0, r.stderr);
  fs.writeFileSync(
    path.join(work, 'recipe.yaml'),
    'merge_method: task_arithmetic\nbase_model: base\nmodels:\n  - model: chat\n    parameters:\n      weight: 0.5\ndtype: bfloat16\n',
  );
  snapshot = hashTree(work);
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

const apply = (out: string, ...more: string[]) => ['apply', '--target', 'cp', '--vector', 'vector', '--skip-embed', '--out', out, ...more];

describe('--out never replaces what the tool must not touch', () => {
  it('the current folder (`--out .`), with or without --overwrite', () => {
    refused(work, /refusing to write the output here: it is the current folder/, ...apply('.', '--overwrite'));
    refused(work, /it is the current folder/, ...apply('./', '--overwrite'));
  });

  it('an empty --out (an unset shell variable)', () => {
    refused(work, /--out\) is empty/, ...apply('', '--overwrite'));
    refused(work, /--out\) is empty/, 'extract', '--base', 'base', '--chat', 'chat', '--out', ' ', '--overwrite');
  });

  it('a folder above the current folder, the home folder and the root', () => {
    refused(path.join(work, 'cp'), /it contains the current folder/, 'apply', '--target', '.', '--vector', '../vector', '--skip-embed', '--out', '..', '--overwrite');
    refused(work, /it is your home folder/, ...apply(home, '--overwrite'));
    refused(work, /it is your home folder/, ...apply('~'.replace('~', home) + '/', '--overwrite'));
    refused(work, /it is the root of the file system/, ...apply('/', '--overwrite'));
    assert.equal(fs.readFileSync(path.join(home, '.bashrc'), 'utf8'), '# my settings');
  });

  it('an input, through a relative path, `..`, a trailing slash or a symbolic link', () => {
    refused(work, /it is an input/, ...apply('cp', '--overwrite'));
    refused(work, /it is an input/, ...apply('vector/', '--overwrite'));
    refused(work, /it is an input/, ...apply('base/../cp', '--overwrite'));
    fs.symlinkSync(path.join(work, 'cp'), path.join(root, 'cp-link'));
    try {
      refused(work, /it is an input/, ...apply(path.join(root, 'cp-link'), '--overwrite'));
      refused(work, /it is an input/, 'extract', '--base', 'base', '--chat', 'chat', '--out', 'base', '--overwrite');
      refused(work, /it is an input/, 'apply', '--target', 'cp', '--base', 'base', '--chat', 'chat', '--skip-embed', '--out', 'chat', '--overwrite');
    } finally {
      fs.rmSync(path.join(root, 'cp-link'));
    }
  });

  it('a folder inside an input, and a folder that contains an input', () => {
    refused(work, /it is inside an input/, ...apply('cp/merged', '--overwrite'));
    refused(work, /it is inside an input/, ...apply('cp/merged'));
    const outside = path.join(root, 'elsewhere');
    fs.mkdirSync(outside);
    refused(outside, /it contains an input/, 'apply', '--target', path.join(work, 'cp'), '--vector', path.join(work, 'vector'), '--skip-embed', '--out', work, '--overwrite');
  });

  it('merge: a model of the recipe, or the folder holding the recipe', () => {
    refused(work, /it is an input/, 'merge', 'recipe.yaml', '--out', 'chat', '--overwrite');
    refused(work, /it is an input/, 'merge', 'recipe.yaml', '--out', 'base', '--overwrite');
    const outside = path.join(root, 'elsewhere2');
    fs.mkdirSync(outside);
    refused(outside, /it contains an input/, 'merge', path.join(work, 'recipe.yaml'), '--out', work, '--overwrite');
  });

  it('an output name longer than the file system allows is named in one line; a long one that fits works', () => {
    refused(work, /name is 256 bytes long; file systems allow at most 255/, ...apply(path.join(root, 'x'.repeat(256))));
    const long = path.join(root, 'y'.repeat(240));
    const r = chatvec(work, ...apply(long, '--quiet'));
    assert.equal(r.status, 0, r.stderr);
    assert.ok(fs.existsSync(path.join(long, 'model.safetensors')));
    assertNothingLeft(path.join(root, 'z'));
    assert.deepEqual(fs.readdirSync(root).filter((n) => n.includes('.partial-')), []);
  });
});

describe('output locations that cannot be created', () => {
  it('fail in one line naming the folder, at once (no endless mkdir under /proc)', { skip: !fs.existsSync('/proc/self') && 'no /proc' }, () => {
    const started = Date.now();
    const r = chatvec(work, ...apply('/proc/chatvec-a/b/out'));
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr.trim(), /^chatvec: error: \/proc\/chatvec-a: cannot create the output's parent folder: .*\(E[A-Z]+\)$/);
    assert.ok(Date.now() - started < 60_000);
  });
});

describe('--overwrite replaces only an empty folder or an earlier output of chatvec', () => {
  it('refuses a non-empty folder it did not write, and says what to do', () => {
    const mine = path.join(root, 'mine');
    fs.mkdirSync(mine);
    fs.writeFileSync(path.join(mine, 'thesis.tex'), 'years of work');
    const r = chatvec(work, ...apply(mine, '--overwrite'));
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /is not empty and was not written by chatvec.*move or delete it yourself, or choose another --out/);
    assert.deepEqual(fs.readdirSync(mine), ['thesis.tex']);
    // A file in place of the folder is refused too.
    const file = path.join(root, 'a-file');
    fs.writeFileSync(file, 'data');
    assert.equal(chatvec(work, ...apply(file, '--overwrite')).status, 1);
    assert.equal(fs.readFileSync(file, 'utf8'), 'data');
  });

  it('replaces an empty folder and an earlier output (which carries the marker)', () => {
    const out = path.join(root, 'merged');
    fs.mkdirSync(out);
    assert.equal(chatvec(work, ...apply(out, '--overwrite', '--quiet')).status, 0);
    assert.ok(fs.statSync(path.join(out, OUTPUT_MARKER)).isFile(), 'every output carries the marker');
    const marker = JSON.parse(fs.readFileSync(path.join(out, OUTPUT_MARKER), 'utf8')) as { writtenBy: string };
    assert.match(marker.writtenBy, /^chatvec .* apply$/);
    fs.writeFileSync(path.join(out, 'stale.txt'), 'from the earlier run');
    const r = chatvec(work, ...apply(out, '--overwrite', '--quiet'));
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!fs.existsSync(path.join(out, 'stale.txt')), 'replaced');
    assert.deepEqual(hashTree(work), snapshot, 'inputs untouched');
  });

  it('judges a symbolic link by the folder it points to; refuses a dangling one', () => {
    const out = path.join(root, 'merged2');
    assert.equal(chatvec(work, ...apply(out, '--quiet')).status, 0);
    fs.symlinkSync(out, path.join(root, 'merged-link'));
    assert.equal(chatvec(work, ...apply(path.join(root, 'merged-link'), '--overwrite', '--quiet')).status, 0);
    assert.ok(fs.lstatSync(path.join(root, 'merged-link')).isSymbolicLink(), 'the link stays a link');
    assert.ok(fs.existsSync(path.join(out, 'model.safetensors')), 'the folder it points to was replaced');
    fs.symlinkSync(path.join(work, 'cp'), path.join(root, 'cp-link2'));
    refused(work, /it is an input/, ...apply(path.join(root, 'cp-link2'), '--overwrite'));
    fs.symlinkSync(path.join(root, 'nowhere'), path.join(root, 'dangling'));
    refused(work, /symbolic link/, ...apply(path.join(root, 'dangling'), '--overwrite'));
    assert.ok(fs.lstatSync(path.join(root, 'dangling')).isSymbolicLink());
  });
});

describe('demo', () => {
  it('never replaces folders it did not create', () => {
    const dir = path.join(root, 'demo');
    const theirs = path.join(dir, 'tiny-base');
    fs.mkdirSync(theirs, { recursive: true });
    fs.writeFileSync(path.join(theirs, 'keep.txt'), 'not a demo model');
    const r = chatvec(work, 'demo', '--dir', dir, '--quiet');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /tiny-base is not empty and was not written by chatvec/);
    assert.deepEqual(fs.readdirSync(theirs), ['keep.txt']);
  });
});

describe('inputs that change while a job runs', () => {
  it('fail the job (size, mtime or inode changed) and leave no output', async () => {
    const cp = path.join(root, 'cp-copy');
    fs.cpSync(path.join(work, 'cp'), cp, { recursive: true });
    const shard = fs.readdirSync(cp).find((f) => f.endsWith('.safetensors'))!;
    const out = path.join(root, 'changed');
    let touched = false;
    await rejectsWith(
      runApply(
        { target: cp, vectors: [path.join(work, 'vector')], skipEmbed: true, out, threads: 1 },
        {
          onProgress: () => {
            if (touched) return;
            touched = true;
            // Rewritten in place: same size, new bytes (a concurrent download or a user's script).
            const fd = fs.openSync(path.join(cp, shard), 'r+');
            fs.writeSync(fd, new Uint8Array(4), 0, 4, fs.statSync(path.join(cp, shard)).size - 4);
            fs.closeSync(fd);
            const later = new Date(Date.now() + 5000);
            fs.utimesSync(path.join(cp, shard), later, later);
          },
        },
      ),
      'Io',
      shard,
      'changed while the job ran',
    );
    assert.ok(touched, 'the job reported progress');
    assertNothingLeft(out);
  });
});
