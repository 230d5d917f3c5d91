/**
 * Merge recipes through the built task host: a `merge` job writes the bytes the in-process
 * runRecipeFile writes, queues and cancels like the other jobs (nothing left behind), and the
 * light `recipeCheck` / `recipePlan` requests answer what recipeDiagnostics and the dry run answer
 * in-process; malformed parameters get errors, not a crash; `chatvec --via-host merge` prints and
 * writes what the in-process command does.
 */
import { PACKAGE_VERSION } from './toolVersion';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ChatVecError } from '../../src/core/errors';
import { TOOL_VERSION } from '../../src/core/version';
import { recipeDiagnostics } from '../../src/core/recipes/diagnostics';
import { loadRecipeFile, runRecipeFile } from '../../src/core/recipes/recipe';
import { summarizePlan } from '../../src/core/recipes/summary';
import { formatPlanSummary } from '../../src/protocol/planText';
import type { LogParams, MergeOptions, ProgressParams, RecipeCheckParams, RecipePlanParams } from '../../src/protocol/taskHost';
import { CLI_SCRIPT, assertSameTree, demo, ensureBundles, newClient, partials, tempDir, waitFor } from './support';

before(() => ensureBundles());

/** Writes `<dir>/<name>.yaml`; `{base}`, `{chat}`, `{cp}` become the tiny demo models relative to `dir`. */
function writeRecipe(dir: string, name: string, yaml: string, preset: 'tiny' | 'small' = 'tiny'): string {
  const t = demo(preset);
  const rel = (p: string) => path.relative(dir, p);
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(file, yaml.replaceAll('{base}', rel(t.base)).replaceAll('{chat}', rel(t.chat)).replaceAll('{cp}', rel(t.cp)));
  return file;
}

/** Like examples/recipes/ties.yaml, plus per-tensor filters, a layer gradient and a stray random_seed (a warning). */
const TIES = `merge_method: ties
base_model: {base}
models:
  - model: {chat}
    parameters:
      weight: 0.6
      density:
        - filter: self_attn
          value: [0.3, 0.8]
        - value: 0.5
  - model: {cp}
    parameters:
      weight: 0.4
      density: 0.3
parameters:
  normalize: true
random_seed: 7
dtype: bfloat16
`;

const CHAT_VECTOR = `merge_method: chat_vector
base_model: {base}
target_model: {cp}
chat_models:
  - model: {chat}
    ratio: 0.5
skip_embed: true
special_tokens:
  509: 509
`;

/** The schema error of the common indentation mistake: `weight` beside `model`, not under `parameters`. */
const BROKEN = `merge_method: task_arithmetic
base_model: {base}
models:
  - model: {chat}
    weight: 0.5
`;

/** An assert.rejects predicate: a ChatVecError with this code (and a message matching `re`). */
function isCode(code: string, re?: RegExp) {
  return (e: unknown) => e instanceof ChatVecError && e.code === code && (!re || re.test(e.message));
}

describe('task host recipes', () => {
  it('merge writes the same bytes as the in-process runRecipeFile, with tagged progress and the recipe warnings', async () => {
    assert.equal(TOOL_VERSION, PACKAGE_VERSION, 'test setup: core sees the bundle version');
    const dir = tempDir('chatvec-host-merge-');
    const recipe = writeRecipe(dir, 'ties', TIES);
    const client = newClient();
    const events: ProgressParams[] = [];
    const logs: LogParams[] = [];
    client.onLog((l) => logs.push(l));
    const r = await client.merge({ recipe, out: path.join(dir, 'via-host'), threads: 2 }, { jobId: 'merge-1', onProgress: (p) => events.push(p) });
    assert.ok(r.status === 'ok', JSON.stringify(r));
    const local = await runRecipeFile(recipe, { out: path.join(dir, 'in-process'), threads: 2 });
    assertSameTree(path.join(dir, 'via-host'), path.join(dir, 'in-process'));
    assert.deepEqual({ ...r.result, seconds: 0, out: '' }, JSON.parse(JSON.stringify({ ...local, seconds: 0, out: '' })));
    assert.equal(r.result.tensorCount, 39);
    assert.match(r.result.backend, /^cpu \(2 threads\)$/);
    assert.equal(fs.readFileSync(path.join(dir, 'via-host', 'mergekit_config.yml'), 'utf8'), fs.readFileSync(recipe, 'utf8'));

    const job = events.filter((e) => e.source === 'job');
    assert.ok(events.every((e) => e.jobId === 'merge-1' && e.kind === 'merge'));
    assert.ok(job.length > 0 && job.at(-1)!.done === job.at(-1)!.total, 'the engine reports completion');
    assert.ok(new Set(job.map((e) => e.phase)).has('merge'), 'the write pass reports progress');
    const warn = logs.find((l) => l.jobId === 'merge-1' && l.source === 'job' && l.level === 'warn' && /random_seed/.test(l.message));
    assert.ok(warn, 'the recipe warning reaches the job log');
    assert.match(warn.message, /^.*ties\.yaml:17:1: warning: random_seed is only used by dare_linear, dare_ties, della and della_linear$/);
    assert.ok(logs.some((l) => l.jobId === 'merge-1' && l.source === 'host' && /^merge merge-1 finished .* on cpu/.test(l.message)));
  });

  it('a chat_vector recipe gives the bytes of the in-process run and honours backend', async () => {
    const dir = tempDir('chatvec-host-merge-cv-');
    const recipe = writeRecipe(dir, 'cv', CHAT_VECTOR);
    const client = newClient();
    const r = await client.merge({ recipe, out: path.join(dir, 'via-host'), backend: 'cpu' });
    assert.ok(r.status === 'ok', JSON.stringify(r));
    await runRecipeFile(recipe, { out: path.join(dir, 'in-process') });
    assertSameTree(path.join(dir, 'via-host'), path.join(dir, 'in-process'));
    assert.match(r.result.backend, /^cpu/);
  });

  it('queues a merge behind a running one; cancelling the running one halfway leaves nothing, and the queued one then runs', async () => {
    const dir = tempDir('chatvec-host-merge-cancel-');
    // The small preset on one thread: a few hundred ms per pass, long enough to stop mid-write.
    const slow = writeRecipe(dir, 'slow', TIES, 'small');
    const quick = writeRecipe(dir, 'quick', TIES);
    const outs = path.join(dir, 'out');
    fs.mkdirSync(outs);
    const client = newClient();
    await client.start();
    const seen: ProgressParams[] = [];
    client.onProgress((p) => seen.push(p));
    const abort = new AbortController();
    const first = client.merge({ recipe: slow, out: path.join(outs, 'slow'), threads: 1 }, { jobId: 'slow', cancellation: abort.signal });
    const second = client.merge({ recipe: quick, out: path.join(outs, 'quick') }, { jobId: 'quick' });
    await waitFor(() => seen.some((p) => p.jobId === 'quick' && p.state === 'queued'), 20_000, 'the second merge to queue');
    assert.deepEqual(
      (await client.status()).jobs.map((j) => [j.jobId, j.kind, j.state]),
      [
        ['slow', 'merge', 'running'],
        ['quick', 'merge', 'queued'],
      ],
    );
    // The temporary output folder exists while the write pass runs.
    await waitFor(() => partials(outs).length > 0, 20_000, 'the slow merge to start writing');
    const writing = seen.filter((p) => p.jobId === 'slow' && p.source === 'job' && p.phase === 'merge');
    assert.ok(writing.every((p) => p.done < p.total), 'stopped before the write pass finished');
    abort.abort();
    assert.deepEqual(await first, { status: 'cancelled' });
    assert.ok(!fs.existsSync(path.join(outs, 'slow')), 'no output');
    const r = await second;
    assert.equal(r.status, 'ok');
    assert.deepEqual(fs.readdirSync(outs), ['quick'], 'nothing but the finished merge, no temporary folder');
    assert.ok(seen.findIndex((p) => p.jobId === 'quick' && p.state === 'running') > seen.findIndex((p) => p.jobId === 'slow' && p.state === 'running'));
  });

  it('recipeCheck returns the diagnostics of the in-process recipeDiagnostics', async () => {
    const dir = tempDir('chatvec-host-check-');
    const client = newClient();
    const recipePath = path.join(dir, 'broken.yaml');
    const broken = BROKEN.replaceAll('{base}', path.relative(dir, demo('tiny').base)).replaceAll('{chat}', path.relative(dir, demo('tiny').chat));
    const ds = await client.recipeCheck({ text: broken, recipePath });
    assert.deepEqual(ds, recipeDiagnostics(broken, { recipePath }));
    const err = ds.find((d) => d.severity === 'error');
    assert.ok(err, `a schema error; got ${JSON.stringify(ds)}`);
    assert.deepEqual([err.line, err.column], [4, 4], '`weight` on the fifth line, where the key starts');
    assert.match(err.message, /parameters/, 'the indentation mistake is explained');
    assert.equal(err.source, 'chatvec');

    // Past the schema: a missing folder only shows when folders are checked; headers add the plan's warnings.
    const text = writeAndRead(dir, 'missing.yaml', TIES.replace('{cp}', 'no-such-model'));
    const none = await client.recipeCheck({ text, recipePath: path.join(dir, 'missing.yaml'), depth: 'none' });
    const headers = await client.recipeCheck({ text, recipePath: path.join(dir, 'missing.yaml') });
    assert.deepEqual(none, recipeDiagnostics(text, { recipePath: path.join(dir, 'missing.yaml'), depth: 'none' }));
    assert.deepEqual(headers, recipeDiagnostics(text, { recipePath: path.join(dir, 'missing.yaml'), depth: 'headers' }));
    assert.ok(!none.some((d) => /no-such-model/.test(d.message)));
    const missing = headers.find((d) => d.severity === 'error' && /no-such-model/.test(d.message));
    assert.ok(missing, `a missing-folder error; got ${JSON.stringify(headers)}`);
    assert.equal(missing.line, 10);

    // A clean recipe, checked down to its headers.
    const good = writeAndRead(dir, 'good.yaml', TIES.replace('random_seed: 7\n', ''));
    assert.deepEqual(await client.recipeCheck({ text: good, recipePath: path.join(dir, 'good.yaml') }), []);
  });

  it('recipePlan gives the dry run of the file or of unsaved text, and the errors of a recipe that cannot run', async () => {
    const dir = tempDir('chatvec-host-plan-');
    const recipe = writeRecipe(dir, 'ties', TIES);
    const client = newClient();
    const p = await client.recipePlan({ recipePath: recipe, threads: 3 });
    const local = summarizePlan(loadRecipeFile(recipe).plan, 3);
    assert.deepEqual(p.summary, JSON.parse(JSON.stringify(local)));
    assert.equal(p.text, formatPlanSummary(local));
    assert.equal(p.summary.tensorCount, 39);
    assert.match(p.text, /^merge_method: ties\n/);
    assert.ok(p.summary.filters.some((f) => f.filter === 'self_attn' && f.matched === 16), JSON.stringify(p.summary.filters));
    assert.deepEqual(
      p.issues.map((d) => [d.severity, d.line, d.message]),
      [['warning', 16, 'random_seed is only used by dare_linear, dare_ties, della and della_linear']],
    );
    const verbose = await client.recipePlan({ recipePath: recipe, threads: 3, verbose: true });
    assert.equal(verbose.text, formatPlanSummary(local, true));

    // Unsaved text wins over the file; relative paths still resolve against the file's folder. The
    // estimate assumes the host's default threads.
    await client.configure({ defaultThreads: 5 });
    const edited = fs.readFileSync(recipe, 'utf8').replace('merge_method: ties', 'merge_method: dare_ties');
    const e = await client.recipePlan({ recipePath: recipe, text: edited });
    assert.equal(e.summary.method, 'dare_ties');
    assert.equal(e.summary.threads, 5);
    assert.deepEqual(e.issues, []);

    const broken = BROKEN.replaceAll('{base}', path.relative(dir, demo('tiny').base)).replaceAll('{chat}', path.relative(dir, demo('tiny').chat));
    await assert.rejects(client.recipePlan({ recipePath: recipe, text: broken }), isCode('InvalidArgument', /ties\.yaml:5:5: error: .*parameters/));
    fs.writeFileSync(path.join(dir, 'broken.yaml'), broken);
    await assert.rejects(client.recipePlan({ recipePath: path.join(dir, 'broken.yaml') }), isCode('InvalidArgument', /broken\.yaml:5:5: error: /));
    await assert.rejects(client.recipePlan({ recipePath: path.join(dir, 'nothing.yaml') }), isCode('Io'));
  });

  it('answers malformed parameters and broken recipes with errors and keeps running', async () => {
    const dir = tempDir('chatvec-host-recipe-bad-');
    const recipe = writeRecipe(dir, 'ties', TIES);
    const client = newClient();
    await client.start();
    const pid = client.pid;
    const check = (p: unknown) => client.recipeCheck(p as RecipeCheckParams);
    const plan = (p: unknown) => client.recipePlan(p as RecipePlanParams);
    const merge = (o: unknown) => client.merge(o as MergeOptions);
    await assert.rejects(check({ text: 5, recipePath: recipe }), isCode('InvalidArgument', /recipeCheck: parameters\.text must be a string/));
    await assert.rejects(check({ text: '' }), isCode('InvalidArgument', /recipeCheck: parameters\.recipePath is missing/));
    await assert.rejects(check({ text: '', recipePath: recipe, depth: 'deep' }), isCode('InvalidArgument', /depth must be one of none, folders, headers/));
    await assert.rejects(check({ text: '', recipePath: recipe, path: recipe }), isCode('InvalidArgument', /unknown field "path"/));
    await assert.rejects(plan({}), isCode('InvalidArgument', /give recipePath, text or both/));
    await assert.rejects(plan({ recipePath: recipe, threads: 0 }), isCode('InvalidArgument', /threads must be a whole number/));
    await assert.rejects(merge({ recipe }), isCode('InvalidArgument', /merge: options\.out is missing/));
    await assert.rejects(merge({ recipe: 3, out: path.join(dir, 'o') }), isCode('InvalidArgument', /merge: options\.recipe must be a non-empty string/));
    await assert.rejects(merge({ recipe, out: path.join(dir, 'o'), dtype: 'bf16' }), isCode('InvalidArgument', /unknown field "dtype"/));
    // Well-formed requests whose recipe cannot run: the engine's errors, nothing written.
    const broken = writeRecipe(dir, 'broken', BROKEN);
    await assert.rejects(client.merge({ recipe: broken, out: path.join(dir, 'o') }), isCode('InvalidArgument', /broken\.yaml:5:5: error: /));
    await assert.rejects(client.merge({ recipe: path.join(dir, 'none.yaml'), out: path.join(dir, 'o') }), isCode('Io'));
    fs.mkdirSync(path.join(dir, 'exists'));
    await assert.rejects(client.merge({ recipe, out: path.join(dir, 'exists') }), isCode('OutputExists'));
    assert.deepEqual(fs.readdirSync(dir).sort(), ['broken.yaml', 'exists', 'ties.yaml']);
    assert.equal((await client.status()).pid, pid, 'the same host answers after every failure');
  });
});

describe('chatvec --via-host merge', () => {
  const env = { ...process.env, CHATVEC_WORKER_SCRIPT: '', CHATVEC_DEBUG: '' };
  const cli = async (args: readonly string[]) => {
    try {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI_SCRIPT, ...args], { env, maxBuffer: 64 << 20 });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const x = e as { code?: number; stdout?: string; stderr?: string };
      return { code: x.code ?? -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
    }
  };
  /** stderr without the progress lines (their rates and timing vary from run to run). */
  const messages = (s: string) => s.split('\n').filter((l) => !/^\w+ +\d+% /.test(l));

  it('writes the same files and prints the same lines, each recipe warning once', async () => {
    const dir = tempDir('chatvec-host-cli-merge-');
    const recipe = writeRecipe(dir, 'ties', TIES);
    const local = await cli(['merge', recipe, '--threads', '2', '--out', path.join(dir, 'local')]);
    const hosted = await cli(['--via-host', 'merge', recipe, '--threads', '2', '--out', path.join(dir, 'hosted')]);
    assert.equal(local.code, 0, local.stderr);
    assert.equal(hosted.code, 0, hosted.stderr);
    const norm = (s: string) => s.replace(/(local|hosted)/g, 'OUT').replace(/ in [\d.]+m?s /g, ' in T ');
    assert.match(hosted.stdout, /^wrote .*hosted: 39 tensors, .* \(cpu \(2 threads\)\)\n$/);
    assert.equal(norm(hosted.stdout), norm(local.stdout));
    assert.deepEqual(messages(hosted.stderr), messages(local.stderr));
    assert.equal(hosted.stderr.match(/random_seed is only used/g)?.length, 1, hosted.stderr);
    assertSameTree(path.join(dir, 'hosted'), path.join(dir, 'local'));

    const dry = await cli(['--via-host', 'merge', recipe, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.stdout, (await cli(['merge', recipe, '--dry-run'])).stdout);
  });

  it('a failing merge has the same message and exit code', async () => {
    const dir = tempDir('chatvec-host-cli-merge-err-');
    const recipe = writeRecipe(dir, 'ties', TIES);
    fs.mkdirSync(path.join(dir, 'exists'));
    const args = ['merge', recipe, '--quiet', '--out', path.join(dir, 'exists')];
    const local = await cli(args);
    const hosted = await cli(['--via-host', ...args]);
    assert.equal(local.code, 1);
    assert.equal(hosted.code, 1);
    assert.equal(hosted.stderr, local.stderr);
    assert.match(hosted.stderr, /already exists/);
  });
});

function writeAndRead(dir: string, name: string, yaml: string): string {
  const file = writeRecipe(dir, name.replace(/\.yaml$/, ''), yaml);
  return fs.readFileSync(file, 'utf8');
}
