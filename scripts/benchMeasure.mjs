// What the benchmark scripts share: command-line arguments, the median, and measuring a child
// process (wall seconds, peak RSS, CPU seconds). One place, so every figure in the README is
// measured the same way.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** `--name VALUE` from the command line, else dflt. */
export const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
};

/** Whether `--name` is on the command line. */
export const flag = (name) => process.argv.includes(`--${name}`);

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const hasTime = fs.existsSync('/usr/bin/time') && spawnSync('/usr/bin/time', ['-f', '%M %U %S', 'true']).status === 0;

/**
 * Runs a command as a child process in `cwd`; resolves wall seconds, peak RSS (bytes: the kernel's
 * ru_maxrss from /usr/bin/time, else the last VmHWM read from /proc while it ran), CPU seconds
 * (user + system from /usr/bin/time, else null) and stdout. Rejects when it exits non-zero.
 */
export function measure(cmd, args, cwd) {
  return new Promise((resolve, reject) => {
    const rssFile = path.join(os.tmpdir(), `chatvec-bench-${process.pid}-${Date.now()}`);
    const [c, a] = hasTime ? ['/usr/bin/time', ['-f', '%M %U %S', '-o', rssFile, cmd, ...args]] : [cmd, args];
    const t0 = performance.now();
    const child = spawn(c, a, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let hwm = 0;
    const poll = hasTime
      ? null
      : setInterval(() => {
          try {
            const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
            if (m) hwm = Math.max(hwm, Number(m[1]) * 1024);
          } catch {
            // the process has just exited
          }
        }, 20);
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - t0) / 1000;
      if (poll) clearInterval(poll);
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}\n${stderr}`));
      let peakRss = hwm;
      let cpuSeconds = null;
      if (hasTime) {
        // The last line: /usr/bin/time writes a "Command exited…" line first on failure.
        const [kb, user, sys] = fs.readFileSync(rssFile, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
        peakRss = kb * 1024;
        cpuSeconds = user + sys;
        fs.rmSync(rssFile, { force: true });
      }
      resolve({ seconds, peakRss, cpuSeconds, stdout });
    });
  });
}

/**
 * The I/O floor (scripts/ioFloor.mjs) in a child process: reads `inputs`, writes and fsyncs
 * `outFile` of `outBytes`, then removes it. Resolves measure()'s figures and the script's
 * { read, readSeconds, writeSeconds }.
 */
export async function ioFloor(outFile, outBytes, inputs, cwd) {
  fs.rmSync(outFile, { force: true });
  try {
    const m = await measure(process.execPath, [path.join(import.meta.dirname, 'ioFloor.mjs'), outFile, String(outBytes), ...inputs], cwd);
    return { ...m, ...JSON.parse(m.stdout) };
  } finally {
    fs.rmSync(outFile, { force: true });
  }
}

/** Reads each file front to back once, in this process, with `chunkBytes` reads (the read baseline, or to warm the page cache). */
export function readThrough(files, chunkBytes) {
  const buf = Buffer.allocUnsafe(chunkBytes);
  for (const f of files) {
    const fd = fs.openSync(f, 'r');
    try {
      for (let pos = 0; ; ) {
        const n = fs.readSync(fd, buf, 0, buf.length, pos);
        if (n === 0) break;
        pos += n;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
}
