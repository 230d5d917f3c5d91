/**
 * The worker-task registry: handlers by task kind, from every subsystem that runs chunk tasks in
 * worker threads (engine, diff statistics, merge methods, demo models, GGUF export). It lives here, above those
 * subsystems, so that none of them depends on another through the worker. Each handler returns
 * plain, cloneable data; a long task may report progress (cloneable too) through `progress`, which
 * the pool hands to the caller of run().
 */
import type { WorkerTask } from '../io/workerPool';
import { type CombineTask, type CopyBytesTask, runCombine, runCopyBytes } from '../engine/combineKernel';
import { type DiffChunkTask, runDiffChunk } from '../stats/diffKernel';
import { type LowRankFactorTask, runLowRankFactor } from '../engine/lowRankTask';
import { type RankEnergyTask, runRankEnergy } from '../engine/rankEnergyTask';
import { type DemoModelTask, runDemoModel } from '../demo/worker';
import { type GgufChunkTask, runGgufChunk } from '../gguf/chunkKernel';
import { type RecipeGtaTask, type RecipeStatsTask, runRecipeGta, runRecipeStats } from '../recipes/kernels';

export const workerHandlers: Record<string, (task: WorkerTask, progress: (p: unknown) => void) => unknown> = {
  combine: (t) => runCombine(t as CombineTask),
  copyBytes: (t) => runCopyBytes(t as CopyBytesTask),
  diffChunk: (t) => runDiffChunk(t as DiffChunkTask),
  lowRankFactor: (t) => runLowRankFactor(t as LowRankFactorTask),
  rankEnergy: (t) => runRankEnergy(t as RankEnergyTask),
  recipeStats: (t) => runRecipeStats(t as RecipeStatsTask),
  recipeGta: (t) => runRecipeGta(t as RecipeGtaTask),
  demoModel: (t, progress) => runDemoModel(t as DemoModelTask, progress),
  ggufChunk: (t) => runGgufChunk(t as GgufChunkTask),
};
