/** Which checkpoint plays which part (Base, Chat, Target), remembered per workspace. */
import * as vscode from 'vscode';
import { basename } from 'node:path';
import { assignRole, describeRoleMoves } from '../protocol/roleMoves';
import { Disposable } from './dispose';

export type Role = 'base' | 'chat' | 'target';
export const ROLES: readonly Role[] = ['base', 'chat', 'target'];

export const ROLE_LABEL: Record<Role, string> = { base: 'Base', chat: 'Chat', target: 'Target' };
/** Icons and colours read in light and dark themes (the charts.* palette is theme-aware). */
export const ROLE_ICON: Record<Role, [string, string]> = {
  base: ['layers', 'charts.blue'],
  chat: ['comment-discussion', 'charts.green'],
  target: ['target', 'charts.orange'],
};

const KEY = 'chatVector.roles';

export class RoleStore extends Disposable {
  private readonly changed = this.register(new vscode.EventEmitter<void>());
  readonly onDidChange = this.changed.event;

  constructor(private readonly state: vscode.Memento) {
    super();
    void this.updateContext();
  }

  private get map(): Partial<Record<Role, string>> {
    return this.state.get<Partial<Record<Role, string>>>(KEY, {});
  }

  get(role: Role): string | undefined {
    return this.map[role];
  }

  roleOf(path: string): Role | undefined {
    const m = this.map;
    return ROLES.find((r) => m[r] === path);
  }

  /** The text of the last change of roles (for the tests), e.g. "tiny-cp is now Base (was Target); …". */
  lastChange = '';

  /**
   * Gives `role` to `path` (undefined: clears it). One role per checkpoint and one checkpoint per
   * role: the former holder takes the role `path` gave up (a swap), so nothing is lost silently,
   * and the status bar says what moved.
   */
  async set(role: Role, path: string | undefined): Promise<void> {
    const { map, moves } = assignRole(ROLES, this.map, role, path);
    if (!moves.length) return;
    await this.state.update(KEY, map);
    await this.updateContext();
    this.lastChange = describeRoleMoves(moves, (r) => ROLE_LABEL[r], (p) => basename(p));
    vscode.window.setStatusBarMessage(`$(check) ${this.lastChange}`, 6000);
    this.changed.fire();
  }

  async clear(path: string): Promise<void> {
    const role = this.roleOf(path);
    if (role) await this.set(role, undefined);
  }

  private async updateContext(): Promise<void> {
    const m = this.map;
    // Welcome views and menus read these (e.g. "Compare Base and Chat" only when both are set).
    await vscode.commands.executeCommand('setContext', 'chatVector.hasBaseAndChat', !!(m.base && m.chat));
    // The Explorer's submenu checks the holder's role ("Set as Base ✓") with `resourcePath in
    // chatVector.basePaths`; the Checkpoints view reads the row's contextValue instead.
    for (const r of ROLES) await vscode.commands.executeCommand('setContext', `chatVector.${r}Paths`, m[r] ? { [m[r]]: true } : {});
  }
}
