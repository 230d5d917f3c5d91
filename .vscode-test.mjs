// The same e2e suite in desktop VS Code, for machines that can download and show one:
//   npm run test:e2e:desktop   (builds, then `vscode-test`; @vscode/test-cli + @vscode/test-electron)
// The headless harness in test/e2e/run.sh runs these files under code-server instead (CI).
// The suite generates its demo checkpoints into the folder below when they are missing.
import { defineConfig } from '@vscode/test-cli';
import fs from 'node:fs';

const workspaceFolder = 'e2e-results/ws-desktop';
fs.mkdirSync(workspaceFolder, { recursive: true });

export default defineConfig({
  label: 'e2e',
  // restricted.test.js skips itself in a trusted folder.
  files: 'out/test/e2e/suite/*.test.js',
  workspaceFolder,
  version: '1.100.3',
  launchArgs: ['--disable-extensions', '--disable-workspace-trust'],
  mocha: { ui: 'bdd', timeout: 120_000 },
});
