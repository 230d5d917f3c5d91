// Packages the extension with vsce. Without arguments: the universal .vsix (CPU only: an extension
// package has no node_modules, so the native `webgpu` package is not in it). With
// `--target linux-x64|linux-arm64|darwin-arm64|darwin-x64|win32-x64|win32-arm64`: a platform .vsix
// that also carries that platform's Dawn build at dist/webgpu/ (about 20–40 MB), where the task
// host finds it (src/core/io/webgpuPackage.ts), so the GPU backend works in the installed extension.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const i = process.argv.indexOf('--target');
const target = i > 0 ? process.argv[i + 1] : undefined;
const copy = path.join(root, 'dist', 'webgpu');
fs.rmSync(copy, { recursive: true, force: true });
// --no-rewrite-relative-links: the README's screenshots (media/screenshots/) stay relative links;
// without a repository URL vsce would refuse to rewrite them.
const args = ['package', '--no-dependencies', '--allow-missing-repository', '--no-rewrite-relative-links'];
let ignoreFile;
if (target) {
  // webgpu names its folders <platform>-<arch>, with one universal build for macOS.
  const folder = target.startsWith('darwin') ? 'darwin-universal' : target;
  const pkg = path.join(root, 'node_modules', 'webgpu');
  if (!fs.existsSync(path.join(pkg, 'dist', folder))) throw new Error(`node_modules/webgpu has no build for ${target} (dist/${folder})`);
  fs.mkdirSync(path.join(copy, 'dist'), { recursive: true });
  for (const f of ['package.json', 'index.js', 'LICENSE.md']) fs.copyFileSync(path.join(pkg, f), path.join(copy, f));
  fs.cpSync(path.join(pkg, 'dist', folder), path.join(copy, 'dist', folder), { recursive: true });
  ignoreFile = path.join(os.tmpdir(), `chatvec-vscodeignore-${process.pid}`);
  fs.writeFileSync(ignoreFile, fs.readFileSync(path.join(root, '.vscodeignore'), 'utf8') + '\n!dist/webgpu/**\n');
  args.push('--target', target, '--ignoreFile', ignoreFile, '--out', `chat-vector-${target}.vsix`);
} else {
  args.push('--out', 'chat-vector.vsix');
}
try {
  execFileSync(process.execPath, [path.join(root, 'node_modules', '@vscode', 'vsce', 'vsce'), ...args], { cwd: root, stdio: 'inherit' });
} finally {
  fs.rmSync(copy, { recursive: true, force: true });
  if (ignoreFile) fs.rmSync(ignoreFile, { force: true });
}
