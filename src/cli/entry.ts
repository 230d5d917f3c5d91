/**
 * `chatvec` (bundled as dist/cli.js): chooses which bundle beside it runs the command line.
 * `chatvec diff …` gets the diff-only start path (dist/cliDiff.js, diffMain.ts), which loads a
 * sixth of the code and starts its worker threads at once: on a warm page cache the process
 * start was a quarter of a large diff's time. Everything else, `--via-host` included, gets the
 * full program (dist/cliMain.js, main.ts). Under tsx, tests run main.ts directly.
 */
import { createRequire } from 'node:module';
import path from 'node:path';

const args = process.argv.slice(2);
const diffOnly = args[0] === 'diff' && !args.includes('--via-host');
// Loaded at run time (esbuild does not follow it), each bundle only when chosen; synchronous, as
// a plain `node bundle.js` start is.
createRequire(__filename)(path.join(__dirname, diffOnly ? 'cliDiff.js' : 'cliMain.js'));
