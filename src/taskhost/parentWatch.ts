/**
 * Notices when the process that started the task host is gone. The IPC channel's `disconnect`
 * usually says so first, but not always (a parent frozen and then SIGKILLed, a channel kept open
 * by a grandchild), and a host left running would hold worker threads and half-written outputs
 * for nobody; so the pid is polled as well.
 */

export interface ParentWatch {
  dispose(): void;
}

/**
 * Calls `onGone` once when the parent dies.
 * @param parentPid the pid to watch; defaults to our parent. When it is our own parent, being
 *   re-parented (to init or a subreaper) also counts as its death, which covers pid reuse.
 * @param intervalMs polling period in milliseconds
 */
export function watchParent(onGone: (reason: string) => void, parentPid: number = process.ppid, intervalMs = 1000): ParentWatch {
  const watchingOwnParent = parentPid === process.ppid;
  let fired = false;
  const check = () => {
    if (fired) return;
    let reason: string | null = null;
    if (watchingOwnParent && process.ppid !== parentPid) reason = `parent process ${parentPid} exited (re-parented to ${process.ppid})`;
    else {
      try {
        process.kill(parentPid, 0);
      } catch (e) {
        // EPERM means it exists but belongs to someone else: alive.
        if ((e as NodeJS.ErrnoException).code === 'ESRCH') reason = `parent process ${parentPid} exited`;
      }
    }
    if (reason) {
      fired = true;
      clearInterval(timer);
      onGone(reason);
    }
  };
  const timer = setInterval(check, intervalMs);
  // The IPC channel keeps the process alive while it is open; the poll alone must not.
  timer.unref();
  return { dispose: () => clearInterval(timer) };
}
