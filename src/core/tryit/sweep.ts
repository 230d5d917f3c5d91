/**
 * `chatvec sweep`: the ratio sweep of the chat-vector paper (0.5 vs 1.0 …). For each ratio r, the
 * fused apply θ_cp + r·(θ_chat − θ_base) into `<out>/ratio-<r>`, then its perplexity on the same
 * text; the table is what decides the ratio. `keep: 'best'` removes every merge but the one with
 * the lowest mean NLL once all are measured (their GGUF conversions stay in the cache).
 */
import { ChatVecError } from '../errors';
import { removeTree } from '../io/atomicOutput';
import { join } from '../io/paths';
import type { ApplyOptions, JobContext, JobOutcome } from '../jobs/types';
import type { EvalOptions, EvalReport } from './evaluate';

export interface SweepOptions extends Omit<EvalOptions, 'model'> {
  readonly target: string;
  readonly base: string;
  readonly chat: string;
  readonly ratios: readonly number[];
  /** Folder of the merges: `<out>/ratio-<r>`. */
  readonly out: string;
  /** `all` (default): keep every merge; `best`: only the lowest mean NLL's. */
  readonly keep?: 'all' | 'best';
  /** As apply: copy embeddings and LM head from the target (different vocabularies). */
  readonly skipEmbed?: boolean;
  readonly overwrite?: boolean;
}

export interface SweepRow {
  readonly ratio: number;
  /** The merge's folder; null once removed (`keep: 'best'`). */
  readonly out: string | null;
  readonly report: EvalReport;
}

/** The two jobs a sweep is made of: in this process, or in the task host (the CLI's `--via-host`). */
export interface SweepJobs {
  apply(opts: ApplyOptions, ctx: JobContext): Promise<JobOutcome>;
  evaluate(opts: EvalOptions, ctx: JobContext): Promise<EvalReport>;
}

/** `ratio-0.5`, `ratio-1`, `ratio--0.25`: the ratio as JavaScript prints it. */
export function sweepFolderName(ratio: number): string {
  return `ratio-${String(ratio)}`;
}

/**
 * Runs the sweep; ctx's progress and logs go to each job in turn (`step` names it).
 * @throws ChatVecError InvalidArgument (no ratio, a ratio twice), as runApply and runEval;
 *   CancelledError (merges already measured stay)
 */
export async function runSweep(opts: SweepOptions, jobs: SweepJobs, ctx: JobContext & { step?: (ratio: number, what: 'apply' | 'eval') => void } = {}): Promise<SweepRow[]> {
  if (opts.ratios.length === 0) throw new ChatVecError('InvalidArgument', '--ratios: give at least one ratio, e.g. 0.25,0.5,0.75,1');
  if (new Set(opts.ratios.map(sweepFolderName)).size !== opts.ratios.length) throw new ChatVecError('InvalidArgument', `--ratios ${opts.ratios.join(',')}: a ratio is listed twice`);
  const { target, base, chat, ratios, out, keep, skipEmbed, overwrite, ...evalOpts } = opts;
  const rows: SweepRow[] = [];
  for (const ratio of ratios) {
    const dir = join(out, sweepFolderName(ratio));
    ctx.step?.(ratio, 'apply');
    await jobs.apply({ target, base, chats: [chat], ratios: [ratio], out: dir, skipEmbed, overwrite, backend: evalOpts.backend, threads: evalOpts.threads }, ctx);
    ctx.step?.(ratio, 'eval');
    rows.push({ ratio, out: dir, report: await jobs.evaluate({ ...evalOpts, model: dir }, ctx) });
  }
  if (keep !== 'best') return rows;
  const best = rows.reduce((a, b) => (b.report.meanNll < a.report.meanNll ? b : a));
  return rows.map((r) => {
    if (r === best) return r;
    removeTree(r.out!);
    return { ...r, out: null };
  });
}
