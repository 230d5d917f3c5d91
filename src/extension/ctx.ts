/** What commands and flows need from the running extension (one object, built in activate). */
import type * as vscode from 'vscode';
import type { ChartPanel } from './chart';
import type { CheckpointsProvider, CheckpointStore } from './checkpoints';
import type { Comparison, DeltaNode, DeltasProvider } from './deltas';
import type { TaskHostService } from './host';
import type { JobRunner } from './jobs';
import type { RecipeFeatures } from './recipes';
import type { RoleStore } from './roles';
import type { TryModelPanels } from './tryPanel';

export interface Ctx {
  readonly context: vscode.ExtensionContext;
  readonly log: vscode.LogOutputChannel;
  readonly host: TaskHostService;
  readonly jobs: JobRunner;
  readonly store: CheckpointStore;
  readonly roles: RoleStore;
  /** The Checkpoints view's rows (tests read their order). */
  readonly checkpointsView: CheckpointsProvider;
  readonly deltas: DeltasProvider;
  readonly deltaView: vscode.TreeView<DeltaNode>;
  readonly chart: ChartPanel;
  /** The open Try Model / Compare Replies panels. */
  readonly tryModel: TryModelPanels;
  /** Merge recipes: diagnostics, CodeLens, Dry Run documents, the `chatvec` task type. */
  readonly recipes: RecipeFeatures;
  /**
   * Compares A with B (B null: A is a chat vector) through the task host's cached `diff`, shows
   * the result in the Layer Deltas view and the chart. Undefined when cancelled.
   */
  compare(a: string, b: string | null, opts?: { quiet?: boolean; reveal?: boolean }): Promise<Comparison | undefined>;
  /** Folder of the task host's diff cache. */
  cacheDir(): string;
}
