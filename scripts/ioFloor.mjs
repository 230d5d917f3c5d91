// The benchmarks' I/O floor, run as its own process (scripts/benchMeasure.mjs ioFloor): plain
// sequential I/O — read every input file front to back with 8 MiB reads, then write one file of
// the output's size with 8 MiB writes and fsync it. Prints bytes read and seconds as JSON.
//
//   node scripts/ioFloor.mjs OUT_FILE OUT_BYTES INPUT...
import fs from 'node:fs';

const [outPath, outBytes, ...inputs] = process.argv.slice(2);
const buf = Buffer.alloc(8 * 1024 * 1024, 0x3c);
const t0 = performance.now();
let read = 0;
for (const f of inputs) {
  const fd = fs.openSync(f, 'r');
  for (let pos = 0; ; ) {
    const n = fs.readSync(fd, buf, 0, buf.length, pos);
    if (n === 0) break;
    pos += n;
    read += n;
  }
  fs.closeSync(fd);
}
const t1 = performance.now();
const fd = fs.openSync(outPath, 'w');
for (let left = Number(outBytes); left > 0; ) left -= fs.writeSync(fd, buf, 0, Math.min(buf.length, left));
fs.fsyncSync(fd);
fs.closeSync(fd);
process.stdout.write(JSON.stringify({ read, readSeconds: (t1 - t0) / 1000, writeSeconds: (performance.now() - t1) / 1000 }));
