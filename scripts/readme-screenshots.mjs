// Copies the README's screenshots, saved by the e2e UI walk under stable names
// (e2e-results/readme/*.png, see shot() in test/e2e/driver.mjs), to media/screenshots/.
// Run after `E2E_SKIP=tests npm run test:e2e`; refuses a file over 300 kB (the README's images
// are committed).
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const from = path.join(process.env.E2E_OUT ?? path.join(root, 'e2e-results'), 'readme');
const to = path.join(root, 'media', 'screenshots');
const LIMIT = 300 * 1024;
const files = fs.existsSync(from) ? fs.readdirSync(from).filter((f) => f.endsWith('.png')).sort() : [];
if (!files.length) {
  console.error(`${path.relative(root, from)}: no screenshots; run the UI walk first (E2E_SKIP=tests npm run test:e2e)`);
  process.exit(1);
}
const big = files.filter((f) => fs.statSync(path.join(from, f)).size > LIMIT);
if (big.length) {
  console.error(`over ${LIMIT / 1024} kB: ${big.join(', ')}`);
  process.exit(1);
}
fs.mkdirSync(to, { recursive: true });
for (const f of files) {
  fs.copyFileSync(path.join(from, f), path.join(to, f));
  console.log(`${path.relative(root, path.join(to, f))} (${Math.round(fs.statSync(path.join(to, f)).size / 1024)} kB)`);
}
