// Cancellation: through the job's signal (as the task host and the CLI raise it) and through
// Ctrl-C on the `chatvec` command line. Either way the job stops with Cancelled and leaves neither
// the output nor its temporary sibling behind.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateDemoTrio } from '../../src/core/demo/generator';
import { runApply } from '../../src/core/engine/apply';
import { runExtract } from '../../src/core/engine/extract';
import { CancelledError } from '../../src/core/errors';
import type { ProgressEvent } from '../../src/core/jobs/types';
import { REPO_ROOT, assertNothingLeft, hashTree, leftovers, rejectsWith, tempDir } from './support/engineFixtures';

const CLI = path.join(REPO_ROOT, 'dist/cli.js');

let dir: string;
let small: { base: string; chat: string; cp: string };

before(() => {
  dir = tempDir('cancel');
  small = generateDemoTrio(path.join(dir, 'demo'), 'small', 5);
  if (!fs.existsSync(CLI)) {
    const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts/build.mjs')], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('cancellation through the job signal', () => {
  it('apply: cancelled after the first progress event → Cancelled, nothing left', async () => {
    const out = path.join(dir, 'apply-out');
    const signal = { cancelled: false };
    const events: ProgressEvent[] = [];
    let sawPartial = false;
    const e = await rejectsWith(
      runApply(
        { target: small.cp, base: small.base, chats: [small.chat], out, skipEmbed: true },
        {
          signal,
          onProgress: (ev) => {
            events.push(ev);
            sawPartial ||= leftovers(out).length > 0; // the job had started writing
            signal.cancelled = true;
          },
        },
      ),
      'Cancelled',
    );
    assert.ok(e instanceof CancelledError);
    assert.ok(events.length >= 1);
    assert.ok(sawPartial, 'the temporary folder existed while the job ran');
    assert.ok(events.every((ev) => ev.done < ev.total), 'the job did not finish');
    assertNothingLeft(out);
  });

  it('apply: a signal raised halfway through the chunk tasks → Cancelled, nothing left', async () => {
    const out = path.join(dir, 'apply-half');
    // The job consults the signal before handing out each chunk task: raise it at the 30th look,
    // deterministically in the middle of the job whatever the machine's speed.
    let looks = 0;
    const signal = {
      get cancelled() {
        return ++looks > 30;
      },
    };
    await rejectsWith(runApply({ target: small.cp, base: small.base, chats: [small.chat], out, skipEmbed: true }, { signal }), 'Cancelled');
    assert.ok(looks > 30, `the signal was looked at ${looks} times`);
    assertNothingLeft(out);
  });

  it('extract: a signal raised before the start → Cancelled, nothing created', async () => {
    const out = path.join(dir, 'extract-out');
    await rejectsWith(runExtract({ base: small.base, chat: small.chat, out }, { signal: { cancelled: true } }), 'Cancelled');
    assertNothingLeft(out);
  });

  it('a cancelled --overwrite job keeps the old output', async () => {
    const out = path.join(dir, 'keep-old');
    // An earlier output (with the marker that lets --overwrite replace it).
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'old.txt'), 'old');
    fs.writeFileSync(path.join(out, '.chatvec-output.json'), '{}');
    const signal = { cancelled: false };
    await rejectsWith(
      runApply({ target: small.cp, base: small.base, chats: [small.chat], out, skipEmbed: true, overwrite: true }, { signal, onProgress: () => (signal.cancelled = true) }),
      'Cancelled',
    );
    assert.deepEqual(fs.readdirSync(out).sort(), ['.chatvec-output.json', 'old.txt']);
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.includes('.partial-')), []);
  });
});

describe('Ctrl-C on the command line', () => {
  it('chatvec apply: SIGINT after the first progress line → exit 130, nothing left, inputs untouched', async () => {
    const out = path.join(dir, 'cli-out');
    const inputs = hashTree(path.join(dir, 'demo'));
    // One thread and three chats make the job last long enough to be interrupted.
    const args = [CLI, 'apply', '--target', small.cp, '--base', small.base, '--chat', small.chat, '--chat', small.chat, '--chat', small.chat];
    const child = spawn(process.execPath, [...args, '--threads', '1', '--skip-embed', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    let sent = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && /^apply\s+\d+%/m.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    assert.ok(sent, `no progress line on stderr: ${stderr}`);
    assert.equal(code, 130, `exit ${code}\nstdout: ${stdout}\nstderr: ${stderr}`);
    assert.match(stderr, /cancel/i);
    assert.doesNotMatch(stdout, /^wrote /m);
    assertNothingLeft(out);
    assert.deepEqual(hashTree(path.join(dir, 'demo')), inputs);
  });
});
