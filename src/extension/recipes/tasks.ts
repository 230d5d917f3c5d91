/**
 * The `chatvec` task type: `tasks.json` entries `{ "type": "chatvec", "recipe": …, "out": … }` run
 * `chatvec merge RECIPE --out OUT` (the bundled CLI) in a terminal, and the `$chatvec` problem
 * matcher turns its `file:line:col: error: …` lines into Problems. The provider offers one task
 * per recipe in the workspace. Paths in a definition are relative to the workspace folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { readSettings } from '../config';
import { Disposable } from '../dispose';
import { isMergeRecord, isRecipeName, isRecipeText } from './selector';

export const TASK_TYPE = 'chatvec';
export const PROBLEM_MATCHER = '$chatvec';

export interface ChatvecTaskDefinition extends vscode.TaskDefinition {
  readonly type: typeof TASK_TYPE;
  /** The recipe file, relative to the workspace folder or absolute. */
  readonly recipe: string;
  /** The output folder, relative to the workspace folder or absolute. */
  readonly out: string;
  readonly overwrite?: boolean;
}

const EXCLUDE = '**/{node_modules,.git,.vscode-test,dist,out}/**';
/** Recipes are small; a bigger YAML file is something else (and is not read to find out). */
const MAX_RECIPE_BYTES = 1 << 20;

/** YAML files in the workspace that are merge recipes (by name or by a top-level `merge_method:`). */
export async function findRecipes(token?: vscode.CancellationToken): Promise<vscode.Uri[]> {
  const files = await vscode.workspace.findFiles('**/*.{yaml,yml}', EXCLUDE, 2000, token);
  const out: vscode.Uri[] = [];
  for (const uri of files) {
    if (token?.isCancellationRequested) break;
    try {
      if (isMergeRecord(uri.fsPath)) continue;
      if (isRecipeName(uri.fsPath)) {
        out.push(uri);
        continue;
      }
      const st = await fs.promises.stat(uri.fsPath);
      // Only regular files: a FIFO or a link to /dev/zero named *.yaml would never finish reading.
      if (st.isFile() && st.size <= MAX_RECIPE_BYTES && isRecipeText(await fs.promises.readFile(uri.fsPath, 'utf8'))) out.push(uri);
    } catch {
      // Deleted meanwhile, or unreadable: not offered.
    }
  }
  return out.sort((a, b) => a.fsPath.localeCompare(b.fsPath));
}

function isDefinition(d: vscode.TaskDefinition): d is ChatvecTaskDefinition {
  return d.type === TASK_TYPE && typeof d.recipe === 'string' && d.recipe.length > 0 && typeof d.out === 'string' && d.out.length > 0;
}

export class ChatvecTaskProvider extends Disposable implements vscode.TaskProvider {
  constructor(private readonly cliPath: string) {
    super();
    this.register(vscode.tasks.registerTaskProvider(TASK_TYPE, this));
  }

  async provideTasks(token: vscode.CancellationToken): Promise<vscode.Task[]> {
    const tasks: vscode.Task[] = [];
    for (const uri of await findRecipes(token)) {
      const folder = vscode.workspace.getWorkspaceFolder(uri);
      if (!folder) continue;
      const recipe = path.relative(folder.uri.fsPath, uri.fsPath).split(path.sep).join('/');
      const stem = path.basename(recipe).replace(/(\.merge)?\.ya?ml$/i, '');
      const out = path.posix.join(path.posix.dirname(recipe), `${stem}-merged`);
      tasks.push(this.build({ type: TASK_TYPE, recipe, out }, folder));
    }
    return tasks;
  }

  /** Gives a `tasks.json` entry its execution. */
  resolveTask(task: vscode.Task): vscode.Task | undefined {
    if (!isDefinition(task.definition)) return undefined;
    return this.build(task.definition, task.scope ?? vscode.TaskScope.Workspace, task.name);
  }

  build(def: ChatvecTaskDefinition, scope: vscode.WorkspaceFolder | vscode.TaskScope.Global | vscode.TaskScope.Workspace, name?: string): vscode.Task {
    const folder = typeof scope === 'object' ? scope : vscode.workspace.workspaceFolders?.[0];
    const s = readSettings(folder?.uri);
    const args = [this.cliPath, 'merge', def.recipe, '--out', def.out];
    if (def.overwrite) args.push('--overwrite');
    if (s.threads) args.push('--threads', String(s.threads));
    if (s.maxShardBytes) args.push('--max-shard-size', String(s.maxShardBytes));
    // Under desktop VS Code process.execPath is Electron: this env makes it plain Node (as for the task host).
    const execution = new vscode.ProcessExecution(process.execPath, args, {
      ...(folder ? { cwd: folder.uri.fsPath } : {}),
      // CHATVEC_LINGER_MS: the problem matcher must see the error lines printed just before exit (src/cli/main.ts).
      env: { ELECTRON_RUN_AS_NODE: '1', CHATVEC_LINGER_MS: '1500' },
    });
    const task = new vscode.Task(def, scope, name ?? `merge ${def.recipe}`, TASK_TYPE, execution, [PROBLEM_MATCHER]);
    task.detail = `chatvec merge ${def.recipe} --out ${def.out}${def.overwrite ? ' --overwrite' : ''}`;
    return task;
  }
}
