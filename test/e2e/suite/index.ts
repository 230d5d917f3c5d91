/**
 * The mocha runner loaded by the extension host through `extensionTestsPath`: the contract of
 * @vscode/test-electron (a module exporting `run(): Promise<void>`), used here under code-server
 * by test/e2e/driver.mjs and on desktop VS Code by @vscode/test-cli (.vscode-test.mjs).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: 60_000, reporter: 'spec' });
  const grep = process.env.E2E_GREP;
  if (grep) mocha.grep(grep);
  // The harness runs twice: trusted (everything) and in Restricted Mode (restricted.test.js only).
  const restricted = process.env.E2E_SUITE === 'restricted';
  for (const f of fs.readdirSync(__dirname).sort()) {
    if (f.endsWith('.test.js') && (f === 'restricted.test.js') === restricted) mocha.addFile(path.join(__dirname, f));
  }
  return new Promise((resolve, reject) => {
    mocha.run((failures) => (failures > 0 ? reject(new Error(`${failures} e2e test(s) failed`)) : resolve()));
  });
}
