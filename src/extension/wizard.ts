/**
 * Multi-step input: quick picks and input boxes in one flow, each titled "Title (step/total)"
 * with a Back button from the second step on. The total is recomputed after every step, so a
 * choice that adds or skips steps shows at once. Built on createQuickPick/createInputBox (the
 * showQuickPick shortcut has no Back button).
 */
import * as vscode from 'vscode';

/** Returned by a step when the user pressed Back. */
export const BACK = Symbol('back');
export type StepResult<T> = T | typeof BACK | undefined;

/** One step; `undefined` ends the flow (Escape), BACK goes to the previous step. */
export type Step<S> = (w: Wizard, state: S) => Promise<'next' | typeof BACK | undefined>;

export class Wizard {
  /** The title of the step on screen, undefined when none is (read by the tests through the API). */
  static shown: string | undefined;

  /** 1-based number of the step being shown, and the flow's total as known now. */
  step = 1;
  total = 1;

  constructor(readonly title: string) {}

  private heading(): string {
    return `${this.title} (${this.step}/${this.total})`;
  }

  /**
   * Runs `steps` (the list may depend on the state: `steps(state)` is asked again after each
   * step). Resolves true when the last step completed, false when the user left.
   */
  static async run<S>(title: string, state: S, steps: (state: S) => Step<S>[]): Promise<boolean> {
    const w = new Wizard(title);
    let i = 0;
    for (;;) {
      const list = steps(state);
      if (i >= list.length) return true;
      w.step = i + 1;
      w.total = list.length;
      const r = await list[i]!(w, state);
      if (r === undefined) return false;
      i = r === BACK ? Math.max(0, i - 1) : i + 1;
    }
  }

  /** One choice. `active` is the item to highlight (e.g. the earlier answer when coming back). */
  pick<T extends vscode.QuickPickItem>(o: { items: readonly T[]; placeholder: string; active?: T; matchOnDescription?: boolean; matchOnDetail?: boolean }): Promise<StepResult<T>> {
    return this.quickPick(o, false).then((r) => (r === BACK || r === undefined ? r : r[0]));
  }

  /** Several choices (Enter accepts the checked ones, possibly none). */
  pickMany<T extends vscode.QuickPickItem>(o: { items: readonly T[]; placeholder: string }): Promise<StepResult<readonly T[]>> {
    return this.quickPick(o, true);
  }

  private quickPick<T extends vscode.QuickPickItem>(
    o: { items: readonly T[]; placeholder: string; active?: T; matchOnDescription?: boolean; matchOnDetail?: boolean },
    many: boolean,
  ): Promise<StepResult<readonly T[]>> {
    const qp = vscode.window.createQuickPick<T>();
    qp.title = this.heading();
    Wizard.shown = qp.title;
    qp.placeholder = o.placeholder;
    qp.canSelectMany = many;
    qp.matchOnDescription = o.matchOnDescription ?? true;
    qp.matchOnDetail = o.matchOnDetail ?? true;
    qp.ignoreFocusOut = true;
    qp.items = o.items;
    if (many) qp.selectedItems = o.items.filter((i) => i.picked);
    if (o.active) qp.activeItems = [o.active];
    if (this.step > 1) qp.buttons = [vscode.QuickInputButtons.Back];
    return new Promise((resolve) => {
      let done = false;
      const finish = (v: StepResult<readonly T[]>) => {
        if (done) return;
        done = true;
        resolve(v);
        qp.hide();
      };
      qp.onDidTriggerButton((b) => b === vscode.QuickInputButtons.Back && finish(BACK));
      qp.onDidAccept(() => {
        const chosen = many ? qp.selectedItems : qp.activeItems.slice(0, 1);
        if (!many && !chosen.length) return;
        finish(chosen);
      });
      qp.onDidHide(() => {
        if (Wizard.shown === qp.title) Wizard.shown = undefined;
        finish(undefined);
        qp.dispose();
      });
      qp.show();
    });
  }

  /** Free text; `validate` returns a message (a string or an Error-severity message blocks Enter), or undefined. */
  input(o: { value: string; prompt: string; validate?: (v: string) => string | vscode.InputBoxValidationMessage | undefined; valueSelection?: [number, number] }): Promise<StepResult<string>> {
    const box = vscode.window.createInputBox();
    box.title = this.heading();
    Wizard.shown = box.title;
    box.prompt = o.prompt;
    box.value = o.value;
    if (o.valueSelection) box.valueSelection = o.valueSelection;
    box.ignoreFocusOut = true;
    if (this.step > 1) box.buttons = [vscode.QuickInputButtons.Back];
    const check = (v: string) => (box.validationMessage = o.validate?.(v));
    check(o.value);
    return new Promise((resolve) => {
      let done = false;
      const finish = (v: StepResult<string>) => {
        if (done) return;
        done = true;
        resolve(v);
        box.hide();
      };
      box.onDidChangeValue(check);
      box.onDidTriggerButton((b) => b === vscode.QuickInputButtons.Back && finish(BACK));
      box.onDidAccept(() => {
        const m = o.validate?.(box.value);
        if (typeof m === 'string' || m?.severity === vscode.InputBoxValidationSeverity.Error) return;
        finish(box.value);
      });
      box.onDidHide(() => {
        if (Wizard.shown === box.title) Wizard.shown = undefined;
        finish(undefined);
        box.dispose();
      });
      box.show();
    });
  }
}
