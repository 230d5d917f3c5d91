/**
 * Imported first by tests that compare bytes written by the bundled host with bytes written by the
 * engine in the test process: outputs record the tool version, which the bundler injects as
 * __CHATVEC_VERSION__ and which is "dev" from source. Setting the same global before core loads
 * makes both sides write the same version, so whole output trees can be compared byte for byte.
 */
import fs from 'node:fs';
import path from 'node:path';

const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8')) as { version: string };
(globalThis as { __CHATVEC_VERSION__?: string }).__CHATVEC_VERSION__ = pkg.version;

/** The version the bundles were built with. */
export const PACKAGE_VERSION = pkg.version;
