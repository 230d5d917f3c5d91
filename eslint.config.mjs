// The layering of docs/architecture.md, enforced: extension → protocol ← taskhost → core; cli → taskhost/core;
// webview → protocol. `vscode` is imported only under src/extension; Node built-ins in core only
// under src/core/io (and the worker entry that must start threads); webview never touches Node.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules.filter((m) => !m.startsWith('_')), ...builtinModules.map((m) => `node:${m}`)];
const vscodeOnly = { name: 'vscode', message: '`vscode` may only be imported under src/extension.' };
const noNode = nodeBuiltins.map((name) => ({ name, message: 'Node built-ins belong in src/core/io (core) or outside core.' }));
const layer = (group, message, allowTypeImports = false) => ({ group, message, allowTypeImports });

const restrict = (paths, patterns) => ({
  '@typescript-eslint/no-restricted-imports': ['error', { paths, patterns }],
});

export default tseslint.config(
  { ignores: ['dist/**', 'out/**', 'node_modules/**', '.vscode-test/**', 'e2e-results/**', 'bench-results/**', 'media/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { console: 'readonly', process: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', __dirname: 'readonly', __filename: 'readonly', URL: 'readonly', TextDecoder: 'readonly', TextEncoder: 'readonly', performance: 'readonly', structuredClone: 'readonly', queueMicrotask: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', fetch: 'readonly', require: 'readonly', module: 'writable' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    ignores: ['src/core/io/**', 'src/core/worker/workerMain.ts'],
    rules: restrict([vscodeOnly, ...noNode], [
      layer(['**/extension/**', '**/taskhost/**', '**/cli/**', '**/protocol/**'], 'core depends on nothing above it.'),
    ]),
  },
  {
    files: ['src/core/io/**/*.ts', 'src/core/worker/workerMain.ts'],
    rules: restrict([vscodeOnly], [layer(['**/extension/**', '**/taskhost/**', '**/cli/**', '**/protocol/**'], 'core depends on nothing above it.')]),
  },
  {
    files: ['src/protocol/**/*.ts'],
    rules: restrict([vscodeOnly, ...noNode], [
      layer(['**/extension/**', '**/taskhost/**', '**/cli/**'], 'protocol holds types and constants only.'),
      layer(['**/core/**'], 'protocol may refer to core types only (import type).', true),
    ]),
  },
  {
    files: ['src/taskhost/**/*.ts'],
    rules: restrict([vscodeOnly], [layer(['**/extension/**', '**/cli/**'], 'the task host never depends on its clients.')]),
  },
  {
    files: ['src/cli/**/*.ts'],
    rules: restrict([vscodeOnly], [layer(['**/extension/**'], 'the CLI never depends on the extension.')]),
  },
  {
    files: ['src/extension/**/*.ts'],
    rules: restrict([], [
      layer(['**/core/**'], 'the extension reaches core through the task host (type imports are fine).', true),
      layer(['**/cli/**'], 'the extension never depends on the CLI.'),
    ]),
  },
  {
    files: ['webview/**/*.ts'],
    languageOptions: { globals: { window: 'readonly', document: 'readonly', HTMLElement: 'readonly', acquireVsCodeApi: 'readonly' } },
    rules: restrict([vscodeOnly, ...noNode], [
      layer(['**/src/core/**', '**/src/taskhost/**', '**/src/cli/**', '**/src/extension/**'], 'webview code talks to the extension through src/protocol only.'),
    ]),
  },
  {
    files: ['test/**/*.ts', 'scripts/**/*.mjs', '*.mjs'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
