// Side files from hostile or careless folders (issue 11, items 2, 6 and 11): a config.json linked
// to /dev/zero, a FIFO, a folder or a sparse 65 MiB file in its place, recipes that are FIFOs or
// folders, side files whose links leave the checkpoint folder, a stdout closed early and a
// read-only file system. Each must end at once with one line naming the file (no hang, no memory
// growth, no stack trace), and nothing outside a checkpoint may be copied into an output.
// Real files and real processes: the built CLI (dist/cli.js), also through its task host.
import assert from 'node:assert/strict';
import { type SpawnSyncReturns, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateDemoTrio } from '../../src/core/demo/generator';
import { runApply } from '../../src/core/engine/apply';
import { ioError } from '../../src/core/io/outputFile';
import { readTokenizerInfo } from '../../src/extension/specialTokens';
import { copyFolder, tempDir, writeModel } from './support/engineFixtures';
import { CLI as cli, ensureCli } from './support/builtCli';

/** Every case answers in about a second; a hang is cut off here and fails the test. */
const CLI_LIMIT_MS = 8_000;
const TEST = { timeout: 20_000 };
const STACK = /^\s+at .+[(:]\d+|Unhandled 'error' event|node:internal/m;

let root: string;
let tiny: { base: string; chat: string; cp: string };
let n = 0;
const fifos: string[] = [];

before(() => {
  ensureCli();
  root = tempDir('sidefiles');
  tiny = generateDemoTrio(path.join(root, 'demo'), 'tiny', 5);
});

after(() => {
  // Were a reader still blocked on one of our FIFOs (the code before this fix), opening the write
  // end and closing it gives it end-of-file, so no process is left hanging after the tests.
  for (const f of fifos) {
    try {
      fs.closeSync(fs.openSync(f, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
    } catch {
      // No reader: nothing to release.
    }
  }
  fs.rmSync(root, { recursive: true, force: true });
});

function chatvec(...args: string[]): SpawnSyncReturns<string> {
  const env = { ...process.env };
  delete env.CHATVEC_DEBUG;
  return spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', env, timeout: CLI_LIMIT_MS, killSignal: 'SIGKILL' });
}

/** Fails unless the CLI ended by itself with status `code` and one error line matching `patterns`. */
function assertOneLineError(r: SpawnSyncReturns<string>, code: number, ...patterns: RegExp[]): void {
  assert.equal(r.signal, null, `the CLI did not finish within ${CLI_LIMIT_MS} ms (stderr: ${r.stderr})`);
  assert.equal(r.status, code, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected:\n${r.stderr}`);
  assert.match(lines[0]!, /^chatvec: error: /);
  for (const p of patterns) assert.match(lines[0]!, p);
}

/** A copy of the tiny base model whose config.json is replaced by `make(path)`. */
function baseWithConfig(make: (p: string) => void): { dir: string; config: string } {
  const dir = copyFolder(tiny.base, path.join(root, `base-${n++}`));
  const config = path.join(dir, 'config.json');
  fs.rmSync(config);
  make(config);
  return { dir, config };
}

function mkfifo(p: string): void {
  execFileSync('mkfifo', [p]);
  fifos.push(p);
}

describe('side files are opened without blocking, must be regular files and are read up to a cap', () => {
  it('config.json linked to /dev/zero fails at once, naming the file (not read forever)', TEST, () => {
    const { dir, config } = baseWithConfig((p) => fs.symlinkSync('/dev/zero', p));
    assertOneLineError(chatvec('inspect', dir), 1, new RegExp(`${config}: .*not a regular file`));
  });

  it('config.json that is a FIFO fails at once, in the CLI and in the task host', TEST, () => {
    const { dir, config } = baseWithConfig(mkfifo);
    assertOneLineError(chatvec('inspect', dir), 1, new RegExp(`${config}: .*FIFO.*not a regular file`));
    assertOneLineError(chatvec('--via-host', 'inspect', dir), 1, new RegExp(`${config}: .*not a regular file`));
  });

  it('config.json that is a folder (EISDIR) names the file', TEST, () => {
    const { dir, config } = baseWithConfig((p) => fs.mkdirSync(p));
    assertOneLineError(chatvec('inspect', dir), 1, new RegExp(`${config}: is a folder, not a regular file`));
  });

  it('a config.json over 64 MiB is refused without being read, and the message names the cap', TEST, () => {
    const { dir, config } = baseWithConfig((p) => {
      fs.writeFileSync(p, '');
      fs.truncateSync(p, 65 * 1024 * 1024); // sparse: no disk space used
    });
    assertOneLineError(chatvec('inspect', dir), 1, new RegExp(`${config}: .*64 MiB limit for JSON side files`));
  });

  it('a recipe that is a FIFO or a folder fails at once with exit status 2, naming the file', TEST, () => {
    const fifo = path.join(root, `recipe-${n++}.yaml`);
    mkfifo(fifo);
    assertOneLineError(chatvec('merge', fifo, '--out', path.join(root, `merged-${n++}`)), 2, new RegExp(`${fifo}: .*FIFO.*not a regular file`));
    const folder = path.join(root, `recipe-${n++}.yaml`);
    fs.mkdirSync(folder);
    assertOneLineError(chatvec('merge', folder, '--out', path.join(root, `merged-${n++}`)), 2, new RegExp(`${folder}: is a folder, not a regular file`));
  });

  it('the extension skips a chat_template.jinja that is a FIFO (its reads never block)', TEST, async () => {
    const dir = copyFolder(tiny.chat, path.join(root, `chat-${n++}`));
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    delete cfg.chat_template;
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(cfg));
    mkfifo(path.join(dir, 'chat_template.jinja'));
    const info = await Promise.race([readTokenizerInfo(dir), new Promise<'hung'>((res) => setTimeout(() => res('hung'), 5_000).unref())]);
    assert.notEqual(info, 'hung', 'reading the tokenizer files hung on the FIFO');
    assert.equal((info as { chatTemplate: string | null }).chatTemplate, null);
  });
});

describe('side files copied into an output stay inside the checkpoint folder', () => {
  it('a tokenizer.model linked outside is not copied (with a warning); Hugging Face cache blob links are', TEST, async () => {
    // The hub cache layout: models--org--name/snapshots/REV/FILE -> ../../blobs/HASH.
    const repoDir = path.join(root, `hub-${n++}`, 'models--org--tiny-cp');
    const blobs = path.join(repoDir, 'blobs');
    const snapshot = path.join(repoDir, 'snapshots', 'rev1');
    fs.mkdirSync(blobs, { recursive: true });
    fs.mkdirSync(snapshot, { recursive: true });
    for (const name of fs.readdirSync(tiny.cp)) {
      fs.copyFileSync(path.join(tiny.cp, name), path.join(blobs, `blob-${name}`));
      fs.symlinkSync(path.join('..', '..', 'blobs', `blob-${name}`), path.join(snapshot, name));
    }
    const secret = path.join(root, `id_ed25519-${n++}`);
    fs.writeFileSync(secret, '-----BEGIN OPENSSH PRIVATE KEY-----\nnot a tokenizer\n');
    fs.symlinkSync(secret, path.join(snapshot, 'tokenizer.model'));
    fs.symlinkSync('/dev/zero', path.join(snapshot, 'vocab.txt'));
    // Inside the folder, but not a regular file: not copied either.
    mkfifo(path.join(snapshot, 'merges.txt'));

    const out = path.join(root, `out-${n++}`);
    const res = await runApply({ target: snapshot, base: tiny.base, chats: [tiny.chat], out, skipEmbed: true });
    assert.ok(!fs.existsSync(path.join(out, 'tokenizer.model')), 'the linked private file must not reach the output');
    assert.ok(!fs.existsSync(path.join(out, 'vocab.txt')));
    assert.ok(!fs.existsSync(path.join(out, 'merges.txt')));
    assert.deepEqual(fs.readFileSync(path.join(out, 'tokenizer.json')), fs.readFileSync(path.join(tiny.cp, 'tokenizer.json')), 'a blob link of the same repository is copied');
    assert.ok(fs.existsSync(path.join(out, 'config.json')));
    const warned = (name: string, what: RegExp) => res.warnings.some((w) => w.includes(path.join(snapshot, name)) && what.test(w));
    assert.ok(warned('tokenizer.model', /leads outside the checkpoint folder/), res.warnings.join('\n'));
    assert.ok(warned('vocab.txt', /leads outside the checkpoint folder/), res.warnings.join('\n'));
    assert.ok(warned('merges.txt', /FIFO.*not a regular file/), res.warnings.join('\n'));
  });
});

describe('clear messages', () => {
  it('a stdout closed early ends quietly: no stack trace, status 0 (inspect --json, demo)', TEST, async () => {
    // inspect --json of a checkpoint with many tensors prints more than a pipe holds.
    const many = writeModel(
      path.join(root, `many-${n++}`),
      Array.from({ length: 1500 }, (_, i) => ({ name: `model.layers.${i}.mlp.up_proj.weight`, dtype: 'F32' as const, shape: [1], values: [0] })),
    );
    for (const args of [['inspect', '--json', many], ['demo', '--dir', path.join(root, `demo-${n++}`)]]) {
      const child = spawn(process.execPath, [cli, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      // Like `| head -c 10`: the reader takes one chunk and goes away.
      child.stdout.once('data', () => child.stdout.destroy());
      const timer = setTimeout(() => child.kill('SIGKILL'), CLI_LIMIT_MS);
      const [code, signal] = (await new Promise((res) => child.on('close', (c, s) => res([c, s])))) as [number | null, string | null];
      clearTimeout(timer);
      assert.equal(signal, null, `${args[0]}: did not finish (stderr: ${stderr})`);
      assert.doesNotMatch(stderr, STACK, `${args[0]}: ${stderr}`);
      assert.equal(code, 0, `${args[0]}: ${stderr}`);
    }
  });

  it('I/O errors say what the OS code means, with the path: read-only file system, not a bare errno', TEST, () => {
    const err = (code: string) => Object.assign(new Error(`${code}: raw text`), { code });
    const cases: [string, RegExp][] = [
      ['EROFS', /^\/m\/out: cannot write: read-only file system \(EROFS\)$/],
      ['ENAMETOOLONG', /^\/m\/out: cannot write: .*name is too long.*\(ENAMETOOLONG\)$/],
      ['EACCES', /^\/m\/out: cannot write: permission denied \(EACCES\)$/],
      ['ENOSPC', /^\/m\/out: cannot write: disk full.*\(ENOSPC\)$/],
    ];
    for (const [code, want] of cases) {
      const e = ioError('/m/out', 'cannot write', err(code));
      assert.equal(e.code, 'Io');
      assert.match(e.message, want);
    }
    assert.equal(ioError('/m/out', 'cannot write', err('EWEIRD')).message, '/m/out: cannot write: EWEIRD');
  });

  it('an output on a real read-only mount says "read-only file system" (needs unshare; skipped otherwise)', TEST, (t) => {
    if (spawnSync('unshare', ['-rm', 'true']).status !== 0) {
      t.skip('no user namespaces here to mount a read-only file system');
      return;
    }
    const mnt = path.join(root, `ro-${n++}`);
    fs.mkdirSync(mnt);
    const script = `mount -t tmpfs -o ro none "$1" && exec "$2" "$3" extract --base "$4" --chat "$5" --out "$1/out"`;
    const r = spawnSync('unshare', ['-rm', 'sh', '-c', script, 'sh', mnt, process.execPath, cli, tiny.base, tiny.chat], {
      cwd: root,
      encoding: 'utf8',
      timeout: CLI_LIMIT_MS,
      killSignal: 'SIGKILL',
    });
    if (/mount: /.test(r.stderr)) {
      t.skip(`cannot mount here: ${r.stderr.trim()}`);
      return;
    }
    assertOneLineError(r, 1, new RegExp(`${mnt}.*read-only file system`));
  });
});
