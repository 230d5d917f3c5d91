/**
 * Where the `webgpu` package (Dawn's Node binding, a native module) is loaded from: the usual
 * package resolution (a source checkout after `npm ci`), else a copy beside the bundles at
 * `dist/webgpu/` — platform-specific .vsix packages carry one there, since an extension package
 * has no node_modules (scripts/package-vsix.mjs).
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export async function importWebGpuPackage(): Promise<unknown> {
  try {
    return await import('webgpu');
  } catch (first) {
    const bundled = path.join(__dirname, 'webgpu', 'index.js');
    if (!fs.existsSync(bundled)) throw first;
    return import(pathToFileURL(bundled).href);
  }
}
