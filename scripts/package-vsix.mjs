// Packages the extension with vsce. Without arguments: the universal .vsix (CPU only: an extension
// package has no node_modules, so the native `webgpu` package is not in it, and neither is
// llama.cpp: its README says that Try Model needs a platform package). With
// `--target linux-x64|linux-arm64|darwin-arm64|darwin-x64|win32-x64|win32-arm64`: a platform .vsix
// (chat-vector-TARGET.vsix) that also carries
// - that platform's Dawn build at dist/webgpu/ (about 20–40 MB), where the task host finds it
//   (src/core/io/webgpuPackage.ts), so the GPU backend works in the installed extension;
// - node-llama-cpp at dist/node-llama-cpp/ (its JavaScript, without the 34 MB llama.cpp source
//   bundle it needs only to build from source), its runtime dependencies at dist/node_modules/
//   (the layout of node_modules/ mirrored, so Node resolves them as in a checkout), and that
//   platform's CPU build of llama.cpp (`@node-llama-cpp/linux-x64`, 29 MB) — never the CUDA or
//   Vulkan builds (181 + 357 MB, 81 MB): GPU builds are an install step (README, "Try a model").
//   When the platform's CPU build is not installed here (npm installs only this machine's), the
//   package is made without llama.cpp, with a warning.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const i = process.argv.indexOf('--target');
const target = i > 0 ? process.argv[i + 1] : undefined;
const copy = path.join(root, 'dist', 'webgpu');
const llamaCopy = path.join(root, 'dist', 'node-llama-cpp');
const llamaDeps = path.join(root, 'dist', 'node_modules');
// --no-rewrite-relative-links: the README's screenshots (media/screenshots/) stay relative links;
// without a repository URL vsce would refuse to rewrite them.
const args = ['package', '--no-dependencies', '--allow-missing-repository', '--no-rewrite-relative-links'];
let ignoreFile;
let readme;

const UNIVERSAL_NOTE =
  '> **This is the universal package: Try Model (chat, perplexity with llama.cpp) needs a platform package.** ' +
  'The platform packages (`chat-vector-linux-x64.vsix`, …) carry llama.cpp\'s CPU build; this one has no native code. ' +
  'Everything else (inspect, diff, extract, apply, merge, GGUF export) works here.\n\n';

/** node-llama-cpp's CPU-only binary package for each vsce target. */
const LLAMA_CPU_BUILD = {
  'linux-x64': '@node-llama-cpp/linux-x64',
  'linux-arm64': '@node-llama-cpp/linux-arm64',
  'darwin-arm64': '@node-llama-cpp/mac-arm64-metal',
  'darwin-x64': '@node-llama-cpp/mac-x64',
  'win32-x64': '@node-llama-cpp/win-x64',
  'win32-arm64': '@node-llama-cpp/win-arm64',
};
/** Files of node-llama-cpp needed only to build llama.cpp from source (`getLlama({ build: 'never' })` never reads them). */
const LLAMA_BUILD_ONLY = ['llama/gitRelease.bundle'];

/** The folder of package `name` as Node resolves it from `fromDir` (node_modules/ upward, up to the repository). */
function resolvePackage(name, fromDir) {
  for (let d = fromDir; ; d = path.dirname(d)) {
    const c = path.join(d, 'node_modules', name);
    if (fs.existsSync(path.join(c, 'package.json'))) return c;
    if (d === root || d === path.dirname(d)) return null;
  }
}

/**
 * Copies node-llama-cpp, its `dependencies` closure and the target's CPU build into dist/; returns
 * false (with a warning) when that CPU build is not installed. A package at node_modules/P goes to
 * dist/node_modules/P, except node-llama-cpp itself, which goes to dist/node-llama-cpp/ (with its
 * nested node_modules/), where the task host looks for it.
 */
function copyLlamaCpp(target, distDir = path.join(root, 'dist')) {
  const modules = path.join(root, 'node_modules');
  const [llamaTo, depsTo] = [path.join(distDir, 'node-llama-cpp'), path.join(distDir, 'node_modules')];
  const start = [resolvePackage('node-llama-cpp', root), resolvePackage(LLAMA_CPU_BUILD[target] ?? '-', root)];
  if (!start[0] || !start[1]) {
    console.warn(`warning: ${LLAMA_CPU_BUILD[target] ?? `a llama.cpp build for ${target}`} is not installed: this package has no llama.cpp (Try Model will say so)`);
    return false;
  }
  const seen = new Set();
  for (const stack = [...start]; stack.length; ) {
    const dir = stack.pop();
    if (seen.has(dir)) continue;
    seen.add(dir);
    const pj = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    for (const dep of Object.keys(pj.dependencies ?? {})) {
      const d = resolvePackage(dep, dir);
      if (!d) throw new Error(`${path.relative(root, dir)} depends on ${dep}, which is not installed`);
      stack.push(d);
    }
  }
  for (const dir of seen) {
    const rel = path.relative(modules, dir);
    const dest = rel === 'node-llama-cpp' || rel.startsWith(`node-llama-cpp${path.sep}`) ? path.join(llamaTo, rel.slice('node-llama-cpp'.length)) : path.join(depsTo, rel);
    // A package's own node_modules/ holds nested dependencies, copied on their own when needed;
    // source maps and type declarations are not needed at run time.
    const skip = new Set([path.join(dir, 'node_modules'), ...(rel === 'node-llama-cpp' ? LLAMA_BUILD_ONLY.map((f) => path.join(dir, f)) : [])]);
    fs.cpSync(dir, dest, { recursive: true, dereference: true, filter: (src) => !skip.has(src) && !/\.(map|d\.[mc]?ts)$/.test(src) });
  }
  console.log(`llama.cpp: node-llama-cpp, ${seen.size - 2} dependencies and ${LLAMA_CPU_BUILD[target]} (CPU only) into ${path.relative(root, distDir) || '.'}/`);
  return true;
}

const stage = process.argv.indexOf('--stage');
if (stage > 0) {
  // `--target T --stage DIR`: only lay out what the platform package carries for llama.cpp in
  // DIR (DIR/node-llama-cpp, DIR/node_modules), as it will sit in the package's dist/ (tests).
  if (!target || !process.argv[stage + 1]) throw new Error('--stage DIR needs --target');
  process.exit(copyLlamaCpp(target, path.resolve(process.argv[stage + 1])) ? 0 : 3);
}
for (const d of [copy, llamaCopy, llamaDeps]) fs.rmSync(d, { recursive: true, force: true });
if (target) {
  // webgpu names its folders <platform>-<arch>, with one universal build for macOS.
  const folder = target.startsWith('darwin') ? 'darwin-universal' : target;
  const pkg = path.join(root, 'node_modules', 'webgpu');
  if (!fs.existsSync(path.join(pkg, 'dist', folder))) throw new Error(`node_modules/webgpu has no build for ${target} (dist/${folder})`);
  fs.mkdirSync(path.join(copy, 'dist'), { recursive: true });
  for (const f of ['package.json', 'index.js', 'LICENSE.md']) fs.copyFileSync(path.join(pkg, f), path.join(copy, f));
  fs.cpSync(path.join(pkg, 'dist', folder), path.join(copy, 'dist', folder), { recursive: true });
  ignoreFile = path.join(os.tmpdir(), `chatvec-vscodeignore-${process.pid}`);
  const llama = copyLlamaCpp(target);
  fs.writeFileSync(ignoreFile, fs.readFileSync(path.join(root, '.vscodeignore'), 'utf8') + '\n!dist/webgpu/**\n' + (llama ? '!dist/node-llama-cpp/**\n!dist/node_modules/**\n' : ''));
  args.push('--target', target, '--ignoreFile', ignoreFile, '--out', `chat-vector-${target}.vsix`);
} else {
  // The Marketplace page (the README in the package) of the universal package says what it lacks.
  // (vsce takes the path relative to the repository; dist/ is ignored by git and by .vscodeignore)
  readme = path.join(root, 'dist', 'README.universal.md');
  fs.mkdirSync(path.dirname(readme), { recursive: true });
  fs.writeFileSync(readme, UNIVERSAL_NOTE + fs.readFileSync(path.join(root, 'README.md'), 'utf8'));
  // …in place of README.md (two readmes differing in case only are refused by vsce).
  ignoreFile = path.join(os.tmpdir(), `chatvec-vscodeignore-${process.pid}`);
  fs.writeFileSync(ignoreFile, fs.readFileSync(path.join(root, '.vscodeignore'), 'utf8').replace(/^!README\.md$/m, ''));
  args.push('--readme-path', path.relative(root, readme), '--ignoreFile', ignoreFile, '--out', 'chat-vector.vsix');
}
try {
  execFileSync(process.execPath, [path.join(root, 'node_modules', '@vscode', 'vsce', 'vsce'), ...args], { cwd: root, stdio: 'inherit' });
} finally {
  for (const d of [copy, llamaCopy, llamaDeps]) fs.rmSync(d, { recursive: true, force: true });
  for (const f of [ignoreFile, readme]) if (f) fs.rmSync(f, { force: true });
}
