/**
 * The Try Model commands: `chatVector.tryModel` (a checkpoint from the Checkpoints view, a .gguf
 * file from the Explorer, or a pick) and `chatVector.compareReplies` (two models, one prompt, two
 * columns). Both need a trusted workspace: a checkpoint is converted to GGUF into the cache (a
 * write), and llama.cpp's native code parses the model file, which Restricted Mode's header-only
 * reads never do.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from './ctx';
import { pathOf, pickCheckpoint } from './flowSteps';
import type { TryModelPanel } from './tryPanel';

/** Asks for a model: a discovered checkpoint, or any folder / .gguf file by "Browse…". */
async function pickModel(ctx: Ctx, title: string, exclude: readonly string[] = []): Promise<string | undefined> {
  return (await pickCheckpoint(ctx, { title, placeHolder: 'A checkpoint to chat with', prefer: 'target', exclude })) ?? undefined;
}

/** Try Model…: a chat panel on one model. */
export async function tryModelFlow(ctx: Ctx, arg?: unknown): Promise<TryModelPanel | undefined> {
  const model = pathOf(arg) ?? (await pickModel(ctx, 'Try Model'));
  if (!model) return undefined;
  ctx.log.info(`try model: ${model}`);
  return ctx.tryModel.show([model]);
}

/** Compare Replies…: one prompt to two models side by side (e.g. the CP model and the merged one). */
export async function compareRepliesFlow(ctx: Ctx, a?: unknown, b?: unknown): Promise<TryModelPanel | undefined> {
  const first = pathOf(a) ?? (await pickModel(ctx, 'Compare Replies (1/2): first model'));
  if (!first) return undefined;
  const second = pathOf(b) ?? (await pickModel(ctx, `Compare Replies (2/2): compare ${path.basename(first)} with`, [first]));
  if (!second) return undefined;
  ctx.log.info(`compare replies: ${first} ↔ ${second}`);
  return ctx.tryModel.show([first, second]);
}

/** The completion message's button on Apply and Merge, and what it does. */
export const TRY_MODEL_ACTION = 'Try Model';
export function tryModelAction(ctx: Ctx, out: string): void {
  if (!vscode.workspace.isTrusted) return;
  ctx.tryModel.show([out]);
}
