/**
 * The task host's own stdout/stderr, written so that a client gone away cannot crash it. When the
 * client dies its ends of the pipes close; Node then reports the next write as an EPIPE 'error'
 * event, which, unheard, becomes an uncaught exception — and the crash handler's own report fails
 * the same way. The host must instead go on to cancel its jobs so they remove their temporary
 * output, so every write here is best effort and a broken stream is simply left alone.
 */

let broken = false;

/** Makes errors on stdout/stderr (EPIPE, a destroyed stream) mark them broken instead of throwing. Once per process. */
export function guardStdio(): void {
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => (broken = true));
}

/** Writes to stderr (the client's log) unless the stream is gone; never throws. */
export function writeStderr(text: string): void {
  const s = process.stderr;
  if (broken || s.destroyed || !s.writable) return;
  try {
    s.write(text);
  } catch {
    broken = true;
  }
}

/** True once a write to stdout or stderr has failed (the client's end of the pipes is closed). */
export function stdioBroken(): boolean {
  return broken;
}
