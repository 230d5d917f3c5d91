#!/usr/bin/env node
/* global document, getComputedStyle, window -- functions passed to evaluate() run in the browser page */
// Headless driver of a real VS Code: code-server (VS Code's server, Node extension host and web
// workbench, from npm) in Debian's chromium through playwright-core.
//
//   node test/e2e/driver.mjs tests --code-server DIR --ext DIR --tests PATH --workspace DIR --out DIR
//   node test/e2e/driver.mjs ui    --code-server DIR --ext DIR --workspace DIR --out DIR --vsix FILE
//
// tests: loads the extension from --ext as a development extension and runs the mocha runner at
//        --tests inside the extension host (the @vscode/test-electron contract: run(): Promise).
// ui:    installs the packaged .vsix (not the sources) and walks the UI a user sees: command
//        palette, Checkpoints view, Layer Deltas tree, chart, progress and cancel, a window
//        reload that restores the chart, energy at rank in the tree, a merge recipe with
//        diagnostics and CodeLens, and (--try-model 1) a chat in the Try Model panel. PNG
//        screenshots go to --out and are kept.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import util from 'node:util';
import { chromium } from 'playwright-core';
import { uiHelpers } from './uiPage.mjs';

const [mode, ...rest] = process.argv.slice(2);
const opt = {};
for (let i = 0; i < rest.length; i += 2) opt[rest[i].replace(/^--/, '')] = rest[i + 1];
if (!['tests', 'ui'].includes(mode) || !opt['code-server'] || !opt.ext || !opt.workspace || !opt.out || (mode === 'tests' && !opt.tests) || (mode === 'ui' && !opt.vsix)) {
  console.error('usage: driver.mjs tests|ui --code-server DIR --ext DIR [--tests PATH | --vsix FILE] --workspace DIR --out DIR');
  process.exit(2);
}
const abs = (p) => path.resolve(p);
const codeServerDir = abs(opt['code-server']);
const extDir = abs(opt.ext);
const workspace = abs(opt.workspace);
const outDir = abs(opt.out);
const chromiumPath = opt.chromium || process.env.CHROMIUM_PATH || '/usr/bin/chromium';
// The whole run's budget: the Try-the-result tests start llama.cpp several times (seconds each on a busy CPU).
const timeoutMs = Number(opt.timeout || process.env.E2E_TIMEOUT_MS || 600_000);
// --restricted 1: workspace trust on and the folder untrusted (Restricted Mode).
const restricted = opt.restricted === '1';
// --try-model 1 (ui): the .vsix carries llama.cpp (a platform package): the walk chats with a model.
const tryModel = opt['try-model'] === '1';

const t0 = Date.now();
const log = (...a) => console.log(`[e2e ${mode} +${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
const freePort = () =>
  new Promise((res, rej) => {
    const s = net.createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });

// ---------- 1. code-server on a free port, with isolated state ----------
const runDir = path.join(outDir, `run-${mode}`);
fs.rmSync(runDir, { recursive: true, force: true });
for (const d of ['user-data/User', 'extensions', 'xdg-config', 'xdg-data', 'xdg-cache', 'browser-xdg']) fs.mkdirSync(path.join(runDir, d), { recursive: true });
fs.mkdirSync(workspace, { recursive: true });
fs.writeFileSync(
  path.join(runDir, 'user-data/User/settings.json'),
  JSON.stringify(
    {
      'workbench.startupEditor': 'none',
      'security.workspace.trust.enabled': restricted,
      'security.workspace.trust.startupPrompt': 'never',
      'security.workspace.trust.emptyWindow': false,
      'telemetry.telemetryLevel': 'off',
      'update.mode': 'none',
      'extensions.autoCheckUpdates': false,
      'extensions.autoUpdate': false,
      'extensions.ignoreRecommendations': true,
      'workbench.enableExperiments': false,
      'workbench.tips.enabled': false,
      'git.enabled': false,
      'window.commandCenter': false,
      'workbench.layoutControl.enabled': false,
      // Screenshots read better without the secondary side bar's chat welcome.
      'chat.commandCenter.enabled': false,
    },
    null,
    2,
  ),
);

// VS Code leaves sockets in $XDG_RUNTIME_DIR / $TMPDIR; a short private dir (socket paths must stay
// under 108 characters), removed at the end.
const runtimeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cv-e2e-'));
const csEnv = {
  ...process.env,
  // Hugging Face: a hub cache of this run, which the tests fill as huggingface_hub lays it out
  // (suite/hub.test.ts), and a Hub on 127.0.0.1 that the tests serve; no token of the user's.
  HF_HUB_CACHE: path.join(runDir, 'hf-hub-cache'),
  HF_HOME: path.join(runDir, 'hf-home'),
  HF_ENDPOINT: `http://127.0.0.1:${await freePort()}`,
  HF_TOKEN: '',
  HUGGING_FACE_HUB_TOKEN: '',
  XDG_CONFIG_HOME: path.join(runDir, 'xdg-config'),
  XDG_DATA_HOME: path.join(runDir, 'xdg-data'),
  XDG_CACHE_HOME: path.join(runDir, 'xdg-cache'),
  XDG_RUNTIME_DIR: runtimeDir,
  TMPDIR: runtimeDir,
};
const csEntry = path.join(codeServerDir, 'out/node/entry.js');
// The installed .vsix lives outside the repository, so Node cannot resolve anything from the
// repository's node_modules: the walk runs the package exactly as a user gets it.
const extensionsDir = mode === 'ui' ? path.join(runtimeDir, 'extensions') : path.join(runDir, 'extensions');
if (mode === 'ui') {
  log(`installing ${opt.vsix}`);
  execFileSync(process.execPath, [csEntry, '--user-data-dir', path.join(runDir, 'user-data'), '--extensions-dir', extensionsDir, '--install-extension', abs(opt.vsix)], {
    env: csEnv,
    stdio: 'inherit',
  });
  // The recipe schema ships in the package (.vscodeignore is an allow-list) for yamlValidation.
  const installed = fs.readdirSync(extensionsDir).find((d) => d.startsWith('chatvector.chat-vector-'));
  const pkgJson = JSON.parse(fs.readFileSync(path.join(extensionsDir, installed, 'package.json'), 'utf8'));
  for (const v of pkgJson.contributes.yamlValidation) {
    const schema = path.join(extensionsDir, installed, v.url);
    if (!fs.existsSync(schema)) throw new Error(`yamlValidation schema ${v.url} is missing from the installed .vsix`);
    JSON.parse(fs.readFileSync(schema, 'utf8'));
  }
  // A recipe with the classic indentation mistake over the demo the walk creates, for (9).
  fs.mkdirSync(path.join(workspace, 'recipes'), { recursive: true });
  fs.writeFileSync(
    path.join(workspace, 'recipes', 'demo.merge.yaml'),
    [
      '# Task arithmetic over the demo checkpoints. One mistake: `weight` is not under `parameters`.',
      'merge_method: task_arithmetic',
      'base_model: ../chatvec-demo/tiny-base',
      'models:',
      '  - model: ../chatvec-demo/tiny-chat',
      '    parameters:',
      '    weight: 0.7',
      '  - model: ../chatvec-demo/tiny-cp',
      '    parameters:',
      '      weight: 1.0',
      'dtype: bfloat16',
      '',
    ].join('\n'),
  );
}
const port = await freePort();
const authority = `127.0.0.1:${port}`;
const csLogPath = path.join(runDir, 'code-server.log');
const csLog = fs.openSync(csLogPath, 'w');
const cs = spawn(
  process.execPath,
  [
    csEntry,
    '--auth', 'none',
    '--bind-addr', authority,
    '--disable-telemetry', '--disable-update-check',
    ...(restricted ? [] : ['--disable-workspace-trust']),
    '--disable-getting-started-override', '--disable-proxy',
    '--user-data-dir', path.join(runDir, 'user-data'),
    '--extensions-dir', extensionsDir,
    '--ignore-last-opened',
    workspace,
  ],
  // E2E_SUITE reaches the extension host, where the runner picks the suite for this mode.
  { detached: true, stdio: ['ignore', csLog, csLog], env: { ...csEnv, E2E_SUITE: restricted ? 'restricted' : 'main' } },
);
let browser;
let finished = false;
async function finish(code, why) {
  if (finished) return;
  finished = true;
  if (why) log(why);
  await browser?.close().catch(() => undefined);
  // The whole process group: code-server, its file watcher, pty host and extension host (and
  // through it our task host, which also exits when its parent does).
  try {
    process.kill(-cs.pid, 'SIGTERM');
  } catch {
    // already gone
  }
  await new Promise((r) => setTimeout(r, 1000));
  try {
    process.kill(-cs.pid, 'SIGKILL');
  } catch {
    // already gone
  }
  fs.rmSync(runtimeDir, { recursive: true, force: true });
  if (code !== 0) log(`code-server log: ${csLogPath}`);
  log(`done, exit code ${code}`);
  process.exit(code);
}
const watchdog = setTimeout(() => finish(1, `TIMEOUT after ${timeoutMs} ms`), timeoutMs);
cs.on('exit', (c, s) => {
  if (!finished) finish(1, `code-server exited early (code ${c}, signal ${s})`);
});
process.on('SIGINT', () => finish(130, 'SIGINT'));
process.on('SIGTERM', () => finish(143, 'SIGTERM'));

for (;;) {
  try {
    const r = await fetch(`http://${authority}/healthz`);
    if (r.ok) break;
  } catch {
    // not listening yet
  }
  await new Promise((r) => setTimeout(r, 250));
}
log(`code-server up on http://${authority} (pid ${cs.pid})`);

// ---------- 2. a real browser ----------
browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  env: { ...process.env, XDG_CONFIG_HOME: path.join(runDir, 'browser-xdg'), XDG_CACHE_HOME: path.join(runDir, 'browser-xdg') },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
const page = await context.newPage();

// VS Code web logs console.log('%c INFO', css, fmt, ...args): rebuild the real message.
const fmtConsole = async (m) => {
  let args;
  try {
    args = await Promise.all(m.args().map((a) => a.jsonValue()));
  } catch {
    return m.text();
  }
  if (!args.length) return m.text();
  if (typeof args[0] === 'string' && args[0].startsWith('%c') && args.length >= 3) return `${args[0].slice(2).trim()} ${util.format(...args.slice(2))}`;
  return util.format(...args);
};
const verbose = !!process.env.E2E_VERBOSE;
page.on('console', async (m) => {
  const text = await fmtConsole(m);
  // Mocha's output arrives as INFO lines forwarded from the extension host.
  if (verbose || (mode === 'tests' && m.type() === 'log' && text.startsWith('INFO')) || (m.type() === 'error' && !/Failed to load resource|favicon|ERR_|ENOTFOUND|Long running operations during shutdown/.test(text))) {
    console.log(`  [browser ${m.type()}] ${text.replace(/^INFO /, '')}`);
  }
});
page.on('pageerror', (e) => console.log('  [pageerror]', e.message));

// extensionDevelopmentPath / extensionTestsPath travel in the ?payload= query parameter as
// vscode-remote:// URIs (the Node extension host lives on the server side).
const remote = (p) => `vscode-remote://${authority}${p}`;
const payload = mode === 'ui' ? [] : [['extensionDevelopmentPath', remote(extDir)]];
if (mode === 'tests') payload.push(['extensionTestsPath', remote(abs(opt.tests))]);
const url = `http://${authority}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;

if (mode === 'tests') {
  // The workbench calls window.codeAutomationExit(code) when run()'s promise settles.
  const exitCode = new Promise((res) => page.exposeFunction('codeAutomationExit', (code) => res(code)));
  log(`opening ${url}`);
  await page.goto(url);
  const code = await exitCode;
  clearTimeout(watchdog);
  await finish(code === 0 ? 0 : 1, `extension tests finished with exit code ${code}`);
}

// ---------- ui mode ----------
const { shots, shot, quickInputBox, palette, pickStep, toast, row, webview, cutOffRows, check } = uiHelpers(page, { outDir, log });

try {
  log(`opening ${url}`);
  await page.goto(url);
  await page.locator('.monaco-workbench .part.activitybar').waitFor({ timeout: 120_000 });
  const activity = page.locator('.activitybar .action-item a[aria-label^="Chat Vector"]');
  await activity.waitFor({ timeout: 120_000 });
  log('workbench ready; the installed extension contributes its activity-bar container');

  // (1) The empty views with their welcome content. A wider side bar lets the rows show their values.
  await activity.click();
  const sidebar = await page.locator('.part.sidebar').boundingBox();
  if (sidebar) {
    const x = sidebar.x + sidebar.width - 1;
    await page.mouse.move(x, sidebar.y + 300);
    await page.mouse.down();
    await page.mouse.move(600, sidebar.y + 300, { steps: 8 });
    await page.mouse.up();
  }
  await check('welcome views offer "Create Demo Checkpoints"', () => page.locator('.welcome-view-content .monaco-button', { hasText: 'Create Demo Checkpoints' }).first().waitFor());
  await check('with no checkpoints the Layer Deltas welcome does not offer "Compare Base and Chat" (a dead end)', async () => {
    if (await page.locator('.welcome-view-content .monaco-button', { hasText: 'Compare Base and Chat' }).count()) throw new Error('"Compare Base and Chat" is offered without Base and Chat');
  });
  await shot('ui-01-welcome.png');

  // (2) Command palette → Create Demo Checkpoints → preset pick.
  await palette('Chat Vector: Create Demo Checkpoints', 'ui-02-palette.png');
  await pickStep('Create Demo Checkpoints', 'tiny', 'tiny');
  await check('demo created: the Layer Deltas tree shows Base vs Chat', () => row('tiny-base → tiny-chat').waitFor({ timeout: 60_000 }));
  await check('Checkpoints view lists the demo with roles', async () => {
    await row('tiny-cp').waitFor();
    // The role is the row's icon (and in its accessible name), not repeated in the text.
    await page.locator('.monaco-list-row[aria-label*="tiny-cp, Target"]').first().waitFor();
    await row('tiny-cp').locator('.codicon-target').waitFor();
  });
  await page.keyboard.press('Escape');
  // The role menu checks the row's role ("Set as Target ✓") instead of offering it again; the
  // checked item clears it and the status bar says what changed.
  const menuLabel = (text) => page.locator('.context-view .monaco-menu .action-label', { hasText: text });
  await row('tiny-cp').click({ button: 'right' });
  await check('the role menu marks the current role and offers the others', async () => {
    await menuLabel('Set as Target ✓').first().waitFor();
    for (const t of ['Set as Base', 'Set as Chat']) await menuLabel(new RegExp(`^${t}$`)).first().waitFor();
    if (await menuLabel(/^Set as Target$/).count()) throw new Error('"Set as Target" offered to the Target');
  });
  await shot('ui-02b-role-menu.png');
  await menuLabel('Set as Target ✓').first().click();
  await check('clicking the checked role clears it and says so; the row keeps its place', async () => {
    await page.locator('.statusbar-item', { hasText: 'tiny-cp is no longer Target' }).first().waitFor();
    await page.locator('.monaco-list-row[aria-label*="tiny-cp, Target"]').first().waitFor({ state: 'detached' });
    await row('tiny-cp').locator('.codicon-package').waitFor();
  });
  await row('tiny-cp').click({ button: 'right' });
  await menuLabel(/^Set as Target$/).first().waitFor();
  await page.waitForTimeout(300); // a menu ignores a click in its first moments (the right-click's release)
  await menuLabel(/^Set as Target$/).first().click();
  await page.locator('.monaco-list-row[aria-label*="tiny-cp, Target"]').first().waitFor();
  await palette('Chat Vector: Compare Checkpoints…');
  await pickStep('Compare Checkpoints (1/2)', 'tiny-base', 'tiny-base');
  await check('"Nothing: … is a chat vector" is not offered for an ordinary model', async () => {
    await page.locator('.quick-input-widget .quick-input-title', { hasText: 'Compare Checkpoints (2/2)' }).waitFor();
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'tiny-chat' }).first().waitFor();
    if (await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Nothing:' }).count()) throw new Error('"Nothing" offered for tiny-base');
  });
  await page.keyboard.press('Escape');

  // (3) Layer Deltas tree with values: expand the deepest layer.
  const layer3 = row('Layer 3');
  await layer3.waitFor();
  await layer3.click();
  await check('tensor rows with ‖Δ‖ and relative change', () => page.locator('.monaco-list-row', { hasText: 'self_attn.q_proj.weight' }).first().waitFor());
  await check('rows show relative change and ‖Δ‖', () => page.locator('.monaco-list-row .label-description', { hasText: '‖Δ‖' }).first().waitFor());
  await check('the Layer Deltas view says its order and measure; its toggles swap button and description', async () => {
    const header = page.locator('.pane-header', { hasText: 'Layer Deltas' });
    const description = header.locator('.description');
    const button = (label) => header.locator(`.action-item a[aria-label^="${label}"]`).first();
    await description.filter({ hasText: 'by layer · relative' }).waitFor();
    await header.hover();
    await button('Sort Layer Deltas by Magnitude').click();
    await description.filter({ hasText: 'largest first · relative' }).waitFor();
    await button('Show Absolute ‖Δ‖').click();
    await description.filter({ hasText: 'largest first · absolute' }).waitFor();
    await button('Sort Layer Deltas by Layer Order').click();
    await button('Show Relative Change').click();
    await description.filter({ hasText: 'by layer · relative' }).waitFor();
    await button('Sort Layer Deltas by Magnitude').waitFor();
  });
  await shot('ui-03-views.png');
  // A layer's tooltip (every statistic and the module kinds) fits the window without scrolling.
  await row('Layer 2').hover();
  const hover = page.locator('.monaco-hover', { hasText: 'cos(A, B)' }).first();
  await check('a layer row\'s tooltip fits the window, nothing scrolled away', async () => {
    await hover.waitFor({ timeout: 10_000 });
    const fit = await hover.evaluate((h) => ({
      box: h.getBoundingClientRect().toJSON(),
      height: window.innerHeight,
      scrolled: [h, ...h.querySelectorAll('*')].filter((e) => e.scrollHeight > e.clientHeight + 1 && /auto|scroll|hidden/.test(getComputedStyle(e).overflowY)).length,
    }));
    if (fit.box.top < 0 || fit.box.bottom > fit.height || fit.scrolled) throw new Error(`tooltip does not fit: ${JSON.stringify(fit)}`);
  });
  await shot('ui-03b-layer-tooltip.png');
  await page.mouse.move(800, 892);

  // (4) The chart panel, from the view's title bar.
  await page.locator('.pane-header', { hasText: 'Layer Deltas' }).hover();
  await page.locator('.pane-header .action-item a[aria-label="Open Layer Deltas Chart"]').first().click();
  const wv = webview();
  await check('the chart webview rendered bars and a heatmap', async () => {
    await wv.locator('#title', { hasText: 'tiny-base → tiny-chat' }).waitFor({ timeout: 60_000 });
    await wv.locator('#bars rect.bar').first().waitFor();
    await wv.locator('#heatmap rect.cell').first().waitFor();
  });
  const bars = await wv.locator('#bars rect.bar').count();
  if (bars !== 7) throw new Error(`expected 7 bars (embeddings, 4 layers, final norm, LM head), found ${bars}`);
  await wv.locator('#bars rect.bar[data-key="layer:1"]').hover();
  await check('hovering a bar shows its values', () => wv.locator('#readout', { hasText: 'Layer 1: relative' }).waitFor());
  await wv.locator('#bars rect.bar[data-key="layer:2"]').click();
  await check('clicking a bar reveals the layer in the tree', () => page.locator('.monaco-list-row.selected', { hasText: 'Layer 2' }).waitFor());
  await row('Layer 1').click();
  await check('selecting a layer in the tree highlights it in the chart', () => wv.locator('#bars rect.bar.selected[data-key="layer:1"]').waitFor());
  await check('one heat scale: each layer has the same colour in the tree, the bars and the heatmap', async () => {
    let compared = 0;
    for (const layer of [0, 1, 2, 3]) {
      // The tree renders only the rows in view (expanded layers push the last ones out).
      if (!(await page.locator('.monaco-list-row', { hasText: `Layer ${layer}` }).count())) continue;
      compared++;
      const bar = await wv.locator(`#bars rect.bar[data-key="layer:${layer}"]`).getAttribute('class');
      const step = /heat-(\d)/.exec(bar ?? '')?.[1];
      const icon = await row(`Layer ${layer}`).locator('.custom-view-tree-node-item-icon').evaluate((e) => getComputedStyle(e).backgroundImage);
      if (!step || !icon.includes(`-${step}.svg`)) throw new Error(`Layer ${layer}: bar ${bar}, tree icon ${icon}`);
    }
    if (compared < 2) throw new Error(`only ${compared} layer rows in view`);
    // The legend names its ends and its midpoint.
    await wv.locator('#legend text.legend-tick').nth(2).waitFor();
    const ticks = await wv.locator('#legend text.legend-tick').allTextContents();
    if (ticks.length !== 3 || !/^0/.test(ticks[0]) || !/\d/.test(ticks[2])) throw new Error(`legend numbers: ${JSON.stringify(ticks)}`);
  });
  await check('a selected tree row keeps its heat colour (an icon file, not a repainted codicon)', async () => {
    const icon = await page.locator('.monaco-list-row.selected', { hasText: 'Layer 1' }).locator('.custom-view-tree-node-item-icon').evaluate((e) => getComputedStyle(e).backgroundImage);
    if (!/heat(\/|%2F)(dark|light)-\d\.svg/.test(icon)) throw new Error(`selected row icon: ${icon}`);
  });
  await shot('ui-04-chart.png', 'tree-and-chart');

  // (4b) The chart reflows when the panel changes width: widen the side bar (the chart gets
  // narrower), then narrow it again; the LM head and final norm bars stay inside the visible width.
  const barsFit = async () => {
    const r = await wv.locator('#bars').evaluate((svgEl) => {
      const right = (k) => svgEl.querySelector(`[data-key="${k}"]`)?.getBoundingClientRect().right ?? Infinity;
      return { head: right('lm_head'), norm: right('final_norm'), visible: document.documentElement.clientWidth, width: svgEl.getBoundingClientRect().width };
    });
    if (!(r.head <= r.visible && r.norm <= r.visible)) throw new Error(`bars cut off: ${JSON.stringify(r)}`);
    return r;
  };
  const dragSidebarTo = async (x) => {
    const sb = await page.locator('.part.sidebar').boundingBox();
    await page.mouse.move(sb.x + sb.width - 1, sb.y + 300);
    await page.mouse.down();
    await page.mouse.move(x, sb.y + 300, { steps: 8 });
    await page.mouse.up();
    await page.waitForTimeout(600);
  };
  const wide = await barsFit();
  await dragSidebarTo(1000);
  const narrow = await barsFit();
  await check('after widening the side bar the chart is redrawn narrower, LM head and norm visible', async () => {
    if (!(narrow.width < wide.width - 100)) throw new Error(`the chart did not reflow: ${wide.width} → ${narrow.width}`);
  });
  await shot('ui-04b-chart-resized.png');
  await dragSidebarTo(600);
  await check('narrowing the side bar again widens the chart again', async () => {
    const r = await barsFit();
    if (!(r.width > narrow.width + 100)) throw new Error(`the chart did not reflow back: ${narrow.width} → ${r.width}`);
  });

  // (5) Apply Chat Vector… with the guided flow on a model big enough to watch: progress, Cancel.
  await palette('Chat Vector: Apply Chat Vector…');
  // Base and Chat are set (the demo's), so the flow counts 5 steps until another pair is chosen: 7.
  await pickStep('Apply Chat Vector (1/5)', 'stress-cp', 'stress-cp');
  await pickStep('Apply Chat Vector (2/5)', 'Another base model', 'Another base model');
  await pickStep('Apply Chat Vector (3/7)', 'stress-base', 'stress-base');
  await pickStep('Apply Chat Vector (4/7)', 'stress-chat', 'stress-chat');
  await pickStep('Apply Chat Vector (5/7)'); // ratio: the default
  await pickStep('Apply Chat Vector (6/7)'); // options as pre-selected
  await pickStep('Apply Chat Vector (7/7)'); // output folder: the suggestion
  const running = toast('Applying chat vector to stress-cp');
  await check('a progress notification with percentage and throughput', async () => {
    await running.waitFor({ timeout: 30_000 });
    await running.locator('.notification-list-item-message', { hasText: '%' }).waitFor({ timeout: 30_000 });
  });
  await check('a status-bar item while the job runs', () => page.locator('.statusbar-item', { hasText: 'Applying chat vector' }).first().waitFor());
  await shot('ui-05-progress.png');
  // Clicking the status-bar item shows the job (progress, Cancel, log); it does not cancel it.
  await page.locator('.statusbar-item', { hasText: 'Applying chat vector' }).first().click();
  await check('the status-bar item opens the running job with Cancel and Show Log', async () => {
    await page.locator('.quick-input-widget .quick-input-title', { hasText: 'Chat Vector Jobs' }).waitFor();
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Cancel Applying chat vector' }).waitFor();
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Show Log' }).waitFor();
  });
  await shot('ui-05b-job-from-status-bar.png');
  await page.keyboard.press('Escape');
  await check('the job still runs after the status-bar click', async () => {
    await page.waitForTimeout(500);
    if (!(await page.locator('.statusbar-item', { hasText: 'Applying chat vector' }).count())) throw new Error('the status-bar click ended the job');
  });
  await running.locator('.monaco-button', { hasText: 'Cancel' }).click();
  await check('Cancel stops the job and says nothing was written', () => toast('Cancelled. Nothing was written').waitFor({ timeout: 30_000 }));
  await shot('ui-06-cancelled.png');
  if (fs.existsSync(path.join(workspace, 'stress', 'stress-cp-chat'))) throw new Error('a cancelled apply left its output folder');

  // (6) The same flow on the demo to the end, started from the Target row's inline action (the
  // target is known: four steps): the options explain themselves, success has actions.
  await page.keyboard.press('Escape');
  await check('Apply and Extract are on the Checkpoints view title bar', async () => {
    await page.locator('.pane-header', { hasText: 'Checkpoints' }).hover();
    await page.locator('.pane-header .action-item a[aria-label="Apply Chat Vector…"]').first().waitFor();
    await page.locator('.pane-header .action-item a[aria-label="Extract Chat Vector…"]').first().waitFor();
  });
  await row('tiny-cp').hover();
  await row('tiny-cp').locator('.actions .action-item a[aria-label="Apply Chat Vector…"]').click();
  await check('a step counter, Back, and Base → Chat as one choice', async () => {
    await page.locator('.quick-input-widget .quick-input-title', { hasText: 'Apply Chat Vector (1/4)' }).waitFor();
    await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: 'tiny-base → tiny-chat' }).waitFor();
  });
  await check('the source step\'s explanations are not cut off', async () => {
    const cut = await cutOffRows();
    if (cut.length) throw new Error(`cut off: ${JSON.stringify(cut)}`);
  });
  await shot('ui-07a-apply-source.png');
  await pickStep('Apply Chat Vector (1/4)');
  await page.locator('.quick-input-widget .quick-input-title', { hasText: 'Apply Chat Vector (2/4)' }).waitFor();
  await page.locator('.quick-input-widget .codicon-quick-input-back').first().click();
  await check('Back returns to the previous step, its answer highlighted', async () => {
    await page.locator('.quick-input-widget .quick-input-title', { hasText: 'Apply Chat Vector (1/4)' }).waitFor();
    await page.locator('.quick-input-list .monaco-list-row.focused', { hasText: 'tiny-base → tiny-chat' }).waitFor();
  });
  await pickStep('Apply Chat Vector (1/4)');
  await pickStep('Apply Chat Vector (2/4)');
  await page.locator('.quick-input-widget .quick-input-title', { hasText: 'Apply Chat Vector (3/4)' }).waitFor();
  await check('"Skip embeddings" explains the vocabulary difference; special tokens are offered', async () => {
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'vocabularies differ' }).waitFor();
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'special token' }).waitFor();
  });
  await check('no option explanation is cut off', async () => {
    const cut = await cutOffRows();
    if (cut.length) throw new Error(`cut off: ${JSON.stringify(cut)}`);
  });
  await shot('ui-07-apply-options.png', 'apply-flow');
  // Unticking "Skip embeddings" although the vocabularies differ is stopped before anything runs.
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Skip embeddings' }).first().click();
  await page.locator('.quick-input-widget .monaco-button', { hasText: 'OK' }).first().click();
  const dialog = page.locator('.monaco-dialog-box', { hasText: 'Without "Skip embeddings" this job fails' });
  await check('unticking "Skip embeddings" with differing vocabularies is questioned before the job runs', () => dialog.waitFor());
  await shot('ui-07b-skip-embeddings-kept.png');
  await dialog.locator('.monaco-button', { hasText: 'Skip Embeddings' }).click();
  await pickStep('Apply Chat Vector (4/4)');
  const done = toast('Chat vector applied');
  await check('success offers "Open Folder" and "Compare with Target"', async () => {
    await done.waitFor({ timeout: 60_000 });
    await done.locator('.monaco-button', { hasText: 'Open Folder' }).waitFor();
  });
  await shot('ui-08-applied.png');
  await done.locator('.monaco-button', { hasText: 'Compare with Target' }).click();
  await check('Compare with Target shows the applied delta', () => row('tiny-cp → tiny-cp-chat').waitFor({ timeout: 60_000 }));
  await check('the open chart follows the new comparison', () => webview().locator('#title', { hasText: 'tiny-cp → tiny-cp-chat' }).waitFor({ timeout: 30_000 }));
  await webview().locator('#bars rect.bar[data-key="layer:3"]').click();
  await check('the new comparison reveals layers from the chart too', () => page.locator('.monaco-list-row.selected', { hasText: 'Layer 3' }).waitFor());
  await shot('ui-09-compare-target.png');

  // (7) "Developer: Reload Window" restores the chart through its serializer. (That command
  // flushes the workbench's state before reloading; a bare browser reload may lose the last
  // seconds of state in VS Code web.)
  const navigated = page.waitForNavigation({ timeout: 60_000 });
  await palette('Developer: Reload Window');
  await navigated;
  await page.locator('.monaco-workbench .part.activitybar').waitFor({ timeout: 120_000 });
  await check('the chart panel is restored after a reload', () => webview().locator('#title', { hasText: 'tiny-cp → tiny-cp-chat' }).waitFor({ timeout: 90_000 }));
  await shot('ui-10-restored.png');

  // (8) The heat scale in a dark theme.
  await palette('Preferences: Color Theme');
  await quickInputBox.fill('Dark Modern');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Dark Modern' }).first().waitFor();
  await page.keyboard.press('Enter');
  await check('the workbench switched to a dark theme', () => page.locator('.monaco-workbench.vs-dark').waitFor({ timeout: 30_000 }));
  await row('Layer 3').click();
  await check('the chart follows the theme', () => webview().locator('#bars rect.bar.selected[data-key="layer:3"]').waitFor());
  await shot('ui-11-dark.png');

  // (8b) Energy at rank in the tree: how much of each layer's change a rank-16 LoRA would keep.
  await palette('Chat Vector: Show Energy at Rank…');
  await check('Show Energy at Rank asks for the rank, 16 by default', async () => {
    await page.locator('.quick-input-widget', { hasText: 'Show Energy at Rank' }).waitFor();
    if ((await quickInputBox.inputValue()) !== '16') throw new Error(`rank box holds "${await quickInputBox.inputValue()}"`);
  });
  await page.keyboard.press('Enter');
  await check('the Layer Deltas rows show the energy at rank 16, and the view says they are coloured by it', async () => {
    await page.locator('.monaco-list-row', { hasText: 'energy@16' }).first().waitFor({ timeout: 120_000 });
    await page.locator('.pane-header', { hasText: 'Layer Deltas' }).locator('.description', { hasText: 'colour: energy@16' }).waitFor();
  });
  await shot('ui-11b-energy.png');

  // (9) A merge recipe: the task host's diagnostics under the mistake, and the CodeLens above it.
  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+P');
  await quickInputBox.waitFor({ state: 'visible' });
  await quickInputBox.fill('demo.merge.yaml');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'demo.merge.yaml' }).first().waitFor();
  await page.keyboard.press('Enter');
  const editor = page.locator('.editor-instance .monaco-editor').first();
  await check('CodeLens "Run Merge", "Dry Run", "Compare Inputs" above the recipe', async () => {
    for (const t of ['Run Merge', 'Dry Run', 'Compare Inputs']) await editor.locator('.codelens-decoration a', { hasText: t }).first().waitFor({ timeout: 30_000 });
  });
  await check('a squiggle under the indentation mistake', () => editor.locator('.squiggly-error').first().waitFor({ timeout: 30_000 }));
  await palette('View: Toggle Problems'); // the panel has not been opened in this walk
  await check('the Problems panel explains it', () => page.locator('.markers-panel .monaco-list-row', { hasText: 'is not inside' }).first().waitFor({ timeout: 30_000 }));
  await shot('ui-12-recipe.png', 'recipe-codelens');

  // (10) The Explorer: one "Chat Vector" submenu, only on checkpoints.
  await page.keyboard.press('Escape');
  await palette('View: Show Explorer');
  const explorerRow = (name) => page.locator(`.explorer-folders-view .monaco-list-row[aria-label="${name}"]`).first();
  const menuItem = (text) => page.locator('.context-view .monaco-menu .action-label', { hasText: text });
  await explorerRow('recipes').click({ button: 'right' });
  await page.locator('.context-view .monaco-menu').first().waitFor();
  await check('no Chat Vector items on a folder that is not a checkpoint', async () => {
    if (await menuItem('Chat Vector').count()) throw new Error('"Chat Vector" on the recipes folder');
    if (await menuItem('Set as Base').count()) throw new Error('"Set as Base" on the recipes folder');
  });
  await page.keyboard.press('Escape');
  if (!(await explorerRow('tiny-base').count())) await explorerRow('chatvec-demo').click();
  await explorerRow('tiny-base').click({ button: 'right' });
  await check('one "Chat Vector" submenu on a checkpoint folder, with the roles, Inspect and Compare', async () => {
    await menuItem('Chat Vector').first().waitFor();
    if (await menuItem('Set as Base').count()) throw new Error('the role items are not inside the submenu');
    await menuItem('Chat Vector').first().hover();
    for (const t of ['Set as Base', 'Set as Chat', 'Set as Target', 'Inspect Checkpoint', 'Compare with']) await menuItem(t).first().waitFor();
    // tiny-base is the Base: its role is checked there too, not offered again.
    await menuItem('Set as Base ✓').first().waitFor();
    if (await menuItem(/^Set as Base$/).count()) throw new Error('"Set as Base" offered to the Base');
  });
  await shot('ui-13-explorer-submenu.png');
  await page.keyboard.press('Escape');
  await page.keyboard.press('Escape');

  // (11) Try Model (platform packages carry llama.cpp): chat with the merged model in a panel.
  if (tryModel) {
    await palette('Chat Vector: Try Model…');
    await pickStep('Try Model', 'tiny-cp-chat', 'tiny-cp-chat');
    // The newest webview is the chat panel (the chart's stays open beside it).
    const chat = () => page.frameLocator('iframe.webview.ready').last().frameLocator('#active-frame');
    await check('the Try Model panel loads the model (converted to GGUF on the way)', () => chat().locator('.status.ready').first().waitFor({ timeout: 180_000 }));
    // A short reply: the demo model's weights are random (its reply is noise), and llama.cpp shares
    // the two cores with the browser and VS Code here.
    await chat().locator('#maxTokens').fill('24');
    await chat().locator('#prompt').fill('Hello! Who are you?');
    await chat().locator('#send').click();
    await check('the reply streams into the panel and ends', async () => {
      const reply = chat().locator('.turn .reply').first();
      const deadline = Date.now() + 180_000;
      for (;;) {
        const text = (await reply.count()) ? ((await reply.textContent()) ?? '').trim() : '';
        if (text && (await chat().locator('#send:not([disabled])').count())) break;
        if (Date.now() > deadline) throw new Error(`no finished reply (so far: "${text}")`);
        await page.waitForTimeout(250);
      }
    });
    await shot('ui-14-try-model.png');
  }

  clearTimeout(watchdog);
  log(`screenshots: ${shots.join(', ')}`);
  await finish(0, 'UI walk passed');
} catch (e) {
  console.error(e);
  await shot('ui-failure.png').catch(() => {});
  clearTimeout(watchdog);
  await finish(1, 'UI walk FAILED');
}
