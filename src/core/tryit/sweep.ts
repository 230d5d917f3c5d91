/**
 * `chatvec sweep` and the task host's `sweep` job: the ratio sweep of the chat-vector paper (0.5
 * vs 1.0 …). For each ratio r, the fused apply θ_cp + r·(θ_chat − θ_base) into `<out>/ratio-<r>`,
 * then its perplexity on the same text; the table is what decides the ratio. `keep: 'best'`
 * removes every merge but the one with the lowest mean NLL once all are measured (their GGUF
 * conversions stay in the cache). One code path whether it runs in the CLI's process or in the
 * task host, so both give the same numbers.
 */
import { ChatVecError, isCancelled } from '../errors';
import { runApply } from '../engine/apply';
import { removeTree } from '../io/atomicOutput';
import { join } from '../io/paths';
import type { JobContext } from '../jobs/types';
import { type EvalOptions, type EvalReport, runEval } from './evaluate';

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
  /** The lowest mean NLL of the sweep (the first of equals): the merge `keep: 'best'` keeps. */
  readonly best: boolean;
}

/** `ratio-0.5`, `ratio-1`, `ratio--0.25`: the ratio as JavaScript prints it. */
export function sweepFolderName(ratio: number): string {
  return `ratio-${String(ratio)}`;
}

/** What a sweep's progress message starts with: `ratio 0.5 (2/4)`; a UI reads the step from it. */
export function sweepStepLabel(ratio: number, index: number, count: number): string {
  return `ratio ${String(ratio)} (${index + 1}/${count})`;
}

/**
 * Runs the sweep. Every progress event of the merges and evaluations carries a message that starts
 * with sweepStepLabel, and each step is logged (info). On cancel, the merge of the ratio under way
 * is removed (unmeasured, it is not a result) and the merges already measured stay.
 * @throws ChatVecError InvalidArgument (no ratio, a ratio twice), as runApply and runEval;
 *   CancelledError when ctx.signal is raised
 */
export async function runSweep(opts: SweepOptions, ctx: JobContext = {}): Promise<SweepRow[]> {
  if (opts.ratios.length === 0) throw new ChatVecError('InvalidArgument', '--ratios: give at least one ratio, e.g. 0.25,0.5,0.75,1');
  if (new Set(opts.ratios.map(sweepFolderName)).size !== opts.ratios.length) throw new ChatVecError('InvalidArgument', `--ratios ${opts.ratios.join(',')}: a ratio is listed twice`);
  const { target, base, chat, ratios, out, keep, skipEmbed, overwrite, ...evalOpts } = opts;
  const rows: Omit<SweepRow, 'best'>[] = [];
  for (const [i, ratio] of ratios.entries()) {
    const dir = join(out, sweepFolderName(ratio));
    const label = sweepStepLabel(ratio, i, ratios.length);
    const step: JobContext = { ...ctx, onProgress: ctx.onProgress && ((e) => ctx.onProgress!({ ...e, message: `${label}: ${e.message ?? e.phase}` })) };
    ctx.onLog?.('info', `${label}: merging into ${dir}`);
    await runApply({ target, base, chats: [chat], ratios: [ratio], out: dir, skipEmbed, overwrite, backend: evalOpts.backend, threads: evalOpts.threads }, step);
    try {
      ctx.onLog?.('info', `${label}: evaluating`);
      const report = await runEval({ ...evalOpts, model: dir }, step);
      ctx.onLog?.('info', `${label}: mean NLL ${report.meanNll.toFixed(4)}, perplexity ${report.perplexity.toFixed(3)}`);
      rows.push({ ratio, out: dir, report });
    } catch (e) {
      // Written by this sweep a moment ago (apply refuses an existing folder without overwrite).
      if (isCancelled(e)) removeTree(dir);
      throw e;
    }
  }
  // The first of equal lowest mean NLLs.
  const best = rows.reduce((a, b) => (b.report.meanNll < a.report.meanNll ? b : a));
  return rows.map((r) => {
    if (r === best) return { ...r, best: true };
    if (keep === 'best') removeTree(r.out!);
    return { ...r, out: keep === 'best' ? null : r.out, best: false };
  });
}
