/**
 * The engine functions behind each job kind: the very code the CLI runs in-process, so a job gives
 * the same bytes whichever way it is started.
 */
import { runApply } from '../core/engine/apply';
import { runExtract } from '../core/engine/extract';
import { runDiff } from '../core/stats/diff';
import type { JobRunners } from './jobManager';

/** diff → runDiff, extract → runExtract, apply → runApply. */
export const ENGINE_RUNNERS: JobRunners = {
  diff: runDiff,
  extract: runExtract,
  apply: runApply,
};
