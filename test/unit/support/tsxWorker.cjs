/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS entry: require() is the point */
// Worker entry for tests run under tsx. Node 20 does not apply `--import tsx` hooks to a worker
// whose main file is .ts ("Unknown file extension .ts"), but the CommonJS hook works, so tests
// point CHATVEC_WORKER_SCRIPT here and the pool runs the current sources (not a stale dist/).
require('tsx/cjs');
require('../../../src/core/worker/workerMain.ts');
