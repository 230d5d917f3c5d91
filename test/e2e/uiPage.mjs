/* global getComputedStyle -- functions passed to evaluate() run in the browser page */
// The UI walk's vocabulary over one playwright page (test/e2e/driver.mjs, ui mode): screenshots,
// the command palette, quick pick steps, rows, toasts, the chart's webview, checks that log.
import fs from 'node:fs';
import path from 'node:path';

/** @param page a playwright Page on the workbench; `outDir` receives the screenshots. */
export function uiHelpers(page, { outDir, log }) {
  const shots = [];
  /**
   * Saves a screenshot of the window as `name`; with `readme`, also as readme/<readme>.png, the
   * stable name the README links to (`npm run screenshots` copies them to media/screenshots/).
   */
  async function shot(name, readme) {
    // The README's: no hover (a tab's path tooltip, a button's) over what the picture shows.
    if (readme) await page.mouse.move(800, (page.viewportSize()?.height ?? 900) - 8);
    await page.waitForTimeout(400); // let animations settle
    const p = path.join(outDir, name);
    await page.screenshot({ path: p });
    shots.push(name);
    log(`screenshot ${path.relative(process.cwd(), p)}`);
    if (readme) {
      fs.mkdirSync(path.join(outDir, 'readme'), { recursive: true });
      fs.copyFileSync(p, path.join(outDir, 'readme', `${readme}.png`));
    }
  }
  const quickInputBox = page.locator('.quick-input-widget .quick-input-box input');
  async function palette(title, shotName) {
    await page.keyboard.press('Escape');
    await page.keyboard.press('F1');
    await quickInputBox.waitFor({ state: 'visible' });
    await quickInputBox.fill(`>${title}`);
    // The row whose label starts with the title (not a longer command that merely contains it).
    const match = page.locator(`.quick-input-list .monaco-list-row[aria-label^="${title}"]`).first();
    await match.waitFor();
    if (shotName) await shot(shotName);
    await match.click();
  }
  /** Waits for a quick pick step by its title, filters it, and accepts the first match. */
  async function pickStep(titlePart, filter, rowText) {
    await page.locator('.quick-input-widget .quick-input-title', { hasText: titlePart }).waitFor({ state: 'visible' });
    if (filter !== undefined) await quickInputBox.fill(filter);
    if (rowText) await page.locator('.quick-input-list .monaco-list-row', { hasText: rowText }).first().waitFor();
    await page.waitForTimeout(150); // the list re-filters after typing
    await page.keyboard.press('Enter');
  }
  const toast = (text) => page.locator('.notification-toast', { hasText: text }).first();
  const row = (text) => page.locator('.monaco-list-row', { hasText: text }).first();
  const webview = () => page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
  /** Texts of the visible quick pick rows that are cut off with an ellipsis (label, description or detail). */
  const cutOffRows = () =>
    page.locator('.quick-input-list .monaco-list-row').evaluateAll((rows) =>
      rows.flatMap((r) => [...r.querySelectorAll('*')].filter((e) => getComputedStyle(e).textOverflow === 'ellipsis' && e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent)),
    );
  async function check(what, fn) {
    await fn();
    log(`OK ${what}`);
  }

  return { shots, shot, quickInputBox, palette, pickStep, toast, row, webview, cutOffRows, check };
}
