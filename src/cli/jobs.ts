/**
 * The jobs as the CLI commands call them: in this process by default, or in a task host with the
 * global `--via-host` option. Each `…Job` has the signature of the engine function it stands for,
 * so a command does not know (or care) where its job runs.
 */
import type { InspectReport } from '../core/checkpoint/inspect';
import { inspectPath } from '../core/lora/inspectAdapter';
import { runApply as applyInProcess } from '../core/engine/apply';
import { runExtract as extractInProcess } from '../core/engine/extract';
import { runEnergyAtRank as energyInProcess } from '../core/engine/energyAtRank';
import type { ApplyOptions, DiffOptions, DiffReport, EnergyAtRankOptions, EnergyAtRankReport, ExtractOptions, JobContext, JobOutcome, MergeOptions } from '../core/jobs/types';
import { runDiff as diffInProcess } from '../core/stats/diff';
import { type DownloadJobOptions, type DownloadResult, runDownloadJob as downloadInProcess } from '../core/download/download';
import { runMerge as mergeInProcess } from '../taskhost/runners';
import { type EvalOptions, type EvalReport, runEval as evalInProcess } from '../core/tryit/evaluate';
import { type SweepOptions, type SweepRow, runSweep as sweepInProcess } from '../core/tryit/sweep';
import { type Chat, type ChatOpenOptions, ChatSession } from '../core/tryit/chatSession';
import { ViaHost } from './viaHost';

let host: ViaHost | null = null;

/** Routes the following jobs through a task host (started on first use). */
export function useTaskHost(): void {
  host ??= new ViaHost();
}

/** Stops the task host, if one was used; the process can then exit. */
export async function closeTaskHost(): Promise<void> {
  const h = host;
  host = null;
  await h?.dispose();
}

/** A checkpoint's summary (headers only). @throws ChatVecError BadCheckpoint, Unsupported, Io */
export async function inspectCheckpoint(path: string): Promise<InspectReport> {
  return host ? host.inspect(path) : inspectPath(path);
}

/** See core/engine/extract.ts runExtract. */
export function extractJob(opts: ExtractOptions, ctx: JobContext = {}): Promise<JobOutcome> {
  return host ? host.run('extract', opts, ctx) : extractInProcess(opts, ctx);
}

/** See core/engine/apply.ts runApply. */
export function applyJob(opts: ApplyOptions, ctx: JobContext = {}): Promise<JobOutcome> {
  return host ? host.run('apply', opts, ctx) : applyInProcess(opts, ctx);
}

/** See core/stats/diff.ts runDiff. */
export function diffJob(opts: DiffOptions, ctx: JobContext = {}): Promise<DiffReport> {
  // In process the CLI runs this one job: its thread computes too.
  return host ? host.run('diff', opts, ctx) : diffInProcess(opts, ctx, { callingThreadComputes: true });
}

/** See core/download/download.ts runDownloadJob. */
export function downloadJob(opts: DownloadJobOptions, ctx: JobContext = {}): Promise<DownloadResult> {
  return host ? host.run('downloadModel', opts, ctx) : downloadInProcess(opts, ctx);
}

/** See taskhost/runners.ts runMerge (a recipe file merged into opts.out). */
export function mergeJob(opts: MergeOptions, ctx: JobContext = {}): Promise<JobOutcome> {
  return host ? host.run('merge', opts, ctx) : mergeInProcess(opts, ctx);
}

/** See core/tryit/evaluate.ts runEval. */
export function evalJob(opts: EvalOptions, ctx: JobContext = {}): Promise<EvalReport> {
  return host ? host.run('evalModel', opts, ctx) : evalInProcess(opts, ctx);
}

/** See core/tryit/sweep.ts runSweep (one `sweep` job in the task host). */
export function sweepJob(opts: SweepOptions, ctx: JobContext = {}): Promise<SweepRow[]> {
  return host ? host.run('sweep', opts, ctx) : sweepInProcess(opts, ctx);
}

/** See core/engine/energyAtRank.ts runEnergyAtRank. */
export function energyJob(opts: EnergyAtRankOptions, ctx: JobContext = {}): Promise<EnergyAtRankReport> {
  return host ? host.run('energyAtRank', opts, ctx) : energyInProcess(opts, ctx);
}

/** See core/tryit/chatSession.ts ChatSession.open (with --via-host the model is loaded in the host). */
export function openChat(opts: ChatOpenOptions, ctx: JobContext = {}): Promise<Chat> {
  return host ? host.openChat(opts, ctx) : ChatSession.open(opts, ctx);
}
