/**
 * Where `node-llama-cpp` (llama.cpp's Node binding, an ES module with native binaries in
 * platform packages) is loaded from: the usual package resolution (a source checkout after
 * `npm ci`, the CLI installed from npm), else a copy beside the bundles at `dist/node-llama-cpp/`
 * for an extension package without node_modules. Loaded lazily: nothing else in the tool needs
 * it, and its binaries are tens of megabytes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as LlamaCpp from 'node-llama-cpp' with { 'resolution-mode': 'import' };

export type LlamaCppModule = typeof LlamaCpp;

/** The node-llama-cpp module. @throws whatever `import()` throws when it is not installed */
export async function importLlamaCppPackage(): Promise<LlamaCppModule> {
  try {
    return await import('node-llama-cpp');
  } catch (first) {
    const bundled = path.join(__dirname, 'node-llama-cpp', 'dist', 'index.js');
    if (!fs.existsSync(bundled)) throw first;
    return (await import(pathToFileURL(bundled).href)) as LlamaCppModule;
  }
}
