/**
 * Running task-host jobs with VS Code's progress UI: a notification with percentage, throughput,
 * ETA and a Cancel button, and a status-bar item while any job runs (click it to see the jobs, their
 * progress, the log and Cancel). Jobs
 * are tracked so "Cancel Job" can find them. Results and errors go back to the caller; the command
 * wrapper reports errors once.
 */
import * as vscode from 'vscode';
import type { JobKind, JobOptionsOf, JobResult, JobResultMap, ProgressParams } from '../protocol/taskHost';
import { Disposable } from './dispose';
import type { TaskHostService } from './host';
import { formatBytes, formatDuration, formatRate, printableLines } from '../protocol/displayFormat';

export interface ActiveJob {
  readonly id: string;
  readonly kind: JobKind;
  readonly title: string;
  readonly startedAt: number;
  percent: number;
  readonly cancel: () => void;
}

export interface RunOptions {
  /** Progress in the window's status area instead of a notification (e.g. cached re-diffs). */
  readonly quiet?: boolean;
}

/** Progress text: "apply · 42 % · 310 MB/s · ETA 12 s". */
export function progressMessage(p: ProgressParams): string {
  if (p.state === 'queued') return `queued${p.queuePosition ? ` (position ${p.queuePosition})` : ''}`;
  const parts = [p.message || p.phase];
  if (p.total > 0) parts.push(`${Math.floor((100 * p.done) / p.total)} %`);
  if (p.unit === 'bytes' && p.total > 0) parts.push(`${formatBytes(p.done)} of ${formatBytes(p.total)}`);
  const rate = formatRate(p.bytesPerSecond);
  if (rate) parts.push(rate);
  if (p.etaSeconds !== null && p.etaSeconds > 0) parts.push(`ETA ${formatDuration(p.etaSeconds)}`);
  return parts.filter(Boolean).join(' · ');
}

/** The action on a completion message that lists the job's warnings. */
export const SHOW_WARNINGS = 'Show Warnings';

/** The status-bar item's command: the running jobs, with Cancel and the log (never cancels by itself). */
export const SHOW_JOBS_COMMAND = 'chatVector.showJobs';

export class JobRunner extends Disposable {
  private readonly active = new Map<string, ActiveJob>();
  private readonly status = this.register(vscode.window.createStatusBarItem('chatVector.jobs', vscode.StatusBarAlignment.Left, 50));
  private readonly changed = this.register(new vscode.EventEmitter<void>());
  readonly onDidChange = this.changed.event;
  /** The last progress text of each job, for the tests and the status-bar tooltip. */
  readonly lastProgress = new Map<string, string>();

  constructor(private readonly host: TaskHostService) {
    super();
    this.status.name = 'Chat Vector Jobs';
    this.status.command = SHOW_JOBS_COMMAND;
  }

  get jobs(): readonly ActiveJob[] {
    return [...this.active.values()];
  }

  /** Runs a job of the task host with progress UI; resolves `ok` or `cancelled`, throws on failure. */
  run<K extends JobKind>(kind: K, title: string, options: JobOptionsOf<K>, opts: RunOptions = {}): Promise<JobResult<JobResultMap[K]>> {
    const client = this.host.api;
    const jobId = client.newJobId(kind);
    return this.withUi(jobId, kind, title, opts, async (report, token) => {
      return client.runJob(kind, options, {
        jobId,
        cancellation: token,
        onProgress: (p) => {
          const pct = p.state === 'running' && p.total > 0 ? (100 * p.done) / p.total : undefined;
          report(progressMessage(p), pct);
        },
      });
    });
  }

  /**
   * The progress UI around cancellable work (the task host's jobs). `report(message, percent)`
   * updates both notification and status.
   */
  async withUi<T>(
    id: string,
    kind: ActiveJob['kind'],
    title: string,
    opts: RunOptions,
    work: (report: (message: string, percent?: number) => void, token: vscode.CancellationToken) => Promise<T>,
  ): Promise<T> {
    const cts = new vscode.CancellationTokenSource();
    const job: ActiveJob = { id, kind, title, startedAt: Date.now(), percent: 0, cancel: () => cts.cancel() };
    this.active.set(id, job);
    this.updateStatus();
    try {
      return await vscode.window.withProgress(
        { location: opts.quiet ? vscode.ProgressLocation.Window : vscode.ProgressLocation.Notification, title, cancellable: true },
        async (progress, uiToken) => {
          const sub = uiToken.onCancellationRequested(() => cts.cancel());
          let shown = 0;
          const report = (message: string, percent?: number) => {
            this.lastProgress.set(id, message);
            if (percent !== undefined && Number.isFinite(percent)) {
              const p = Math.max(0, Math.min(100, percent));
              // withProgress takes increments; never report backwards (a new phase restarts at 0).
              const increment = Math.max(0, p - shown);
              shown = Math.max(shown, p);
              job.percent = p;
              progress.report({ message, increment });
            } else {
              progress.report({ message });
            }
            this.updateStatus();
          };
          try {
            return await work(report, cts.token);
          } finally {
            sub.dispose();
          }
        },
      );
    } finally {
      cts.dispose();
      this.active.delete(id);
      this.lastProgress.delete(id);
      this.updateStatus();
    }
  }

  /** Completion messages shown by `showDone`, newest last (for the tests). */
  readonly doneMessages: { message: string; warnings: readonly string[]; actions: readonly string[] }[] = [];

  /**
   * The message at the end of a job, with its follow-up actions. With warnings it is a warning
   * message with **Show Warnings** first: that lists every warning in full (a modal dialog, which
   * wraps), then offers the message again so the other actions are not lost. Resolves the action
   * the user picked among `actions`, or undefined.
   */
  async showDone(message: string, warnings: readonly string[], actions: readonly string[]): Promise<string | undefined> {
    this.doneMessages.push({ message, warnings, actions });
    if (!warnings.length) return vscode.window.showInformationMessage(message, ...actions);
    for (;;) {
      const pick = await vscode.window.showWarningMessage(message, SHOW_WARNINGS, ...actions);
      if (pick !== SHOW_WARNINGS) return pick;
      await vscode.window.showWarningMessage(warnings.length === 1 ? '1 warning' : `${warnings.length} warnings`, { modal: true, detail: warnings.map((w) => `• ${printableLines(w)}`).join('\n\n') });
    }
  }

  /** The open "Chat Vector Jobs" pick (for the tests), undefined when closed. */
  jobsPick: vscode.QuickPick<vscode.QuickPickItem & { action: () => void }> | undefined;

  /**
   * What the status-bar item opens: each running job with its live progress, Cancel per job, and
   * the log. Nothing is cancelled unless the user picks Cancel. Resolves when the pick closes.
   */
  showJobs(log: vscode.LogOutputChannel): Promise<void> {
    type Item = vscode.QuickPickItem & { action: () => void };
    const qp = vscode.window.createQuickPick<Item>();
    this.jobsPick = qp;
    qp.title = 'Chat Vector Jobs';
    qp.placeholder = 'Running jobs: pick one to show its progress notification, or Cancel it';
    qp.matchOnDescription = true;
    const fill = () => {
      const jobs = this.jobs;
      const items: Item[] = [];
      for (const j of jobs) {
        items.push({ label: `$(sync~spin) ${j.title}`, description: `${Math.floor(j.percent)} %`, detail: this.lastProgress.get(j.id) ?? 'starting', action: () => void vscode.commands.executeCommand('notifications.showList') });
        items.push({ label: `$(stop-circle) Cancel ${j.title}`, action: () => j.cancel() });
      }
      if (!jobs.length) items.push({ label: 'No Chat Vector job is running.', action: () => undefined });
      items.push({ label: '$(output) Show Log', description: 'what the jobs reported', action: () => log.show(true) });
      const active = qp.activeItems[0]?.label;
      qp.items = items;
      const keep = items.find((i) => i.label === active);
      if (keep) qp.activeItems = [keep];
    };
    fill();
    const sub = this.onDidChange(fill);
    return new Promise((resolve) => {
      qp.onDidAccept(() => {
        const item = qp.selectedItems[0];
        qp.hide();
        item?.action();
      });
      qp.onDidHide(() => {
        sub.dispose();
        qp.dispose();
        if (this.jobsPick === qp) this.jobsPick = undefined;
        resolve();
      });
      qp.show();
    });
  }

  /** Cancels one job by id, or asks which when several run. Returns the cancelled job's id. */
  async cancel(id?: string): Promise<string | undefined> {
    const jobs = this.jobs;
    let job = id ? this.active.get(id) : jobs.length === 1 ? jobs[0] : undefined;
    if (!job && !id && jobs.length > 1) {
      const pick = await vscode.window.showQuickPick(
        jobs.map((j) => ({ label: j.title, description: `${Math.floor(j.percent)} %`, job: j })),
        { title: 'Cancel which Chat Vector job?' },
      );
      job = pick?.job;
    }
    if (!job) {
      if (!jobs.length) void vscode.window.showInformationMessage('No Chat Vector job is running.');
      return undefined;
    }
    job.cancel();
    return job.id;
  }

  private updateStatus(): void {
    const jobs = this.jobs;
    void vscode.commands.executeCommand('setContext', 'chatVector.jobRunning', jobs.length > 0);
    if (!jobs.length) {
      this.status.hide();
    } else {
      const first = jobs[0]!;
      const more = jobs.length > 1 ? ` (+${jobs.length - 1})` : '';
      this.status.text = `$(sync~spin) ${first.title} ${Math.floor(first.percent)} %${more}`;
      this.status.tooltip = `${jobs.map((j) => `${j.title}: ${this.lastProgress.get(j.id) ?? 'starting'}`).join('\n')}\nClick to see the job (progress, log, Cancel).`;
      this.status.show();
    }
    this.changed.fire();
  }
}
