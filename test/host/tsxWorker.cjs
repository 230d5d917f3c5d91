/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS entry: require() is the point */
// Worker entry for the in-process engine runs that the host tests compare against. Node 20 does
// not apply `--import tsx` hooks to a worker whose main file is .ts, but the CommonJS hook works.
require('tsx/cjs');
require('../../src/core/worker/workerMain.ts');
