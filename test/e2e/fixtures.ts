/**
 * Large-but-cheap checkpoints for the e2e tests of progress, cancel and crash: one F32 tensor per
 * model in a sparse file (created with ftruncate, so it costs no disk until something writes),
 * big enough that an apply runs for seconds. All-zero weights are fine here: these tests look at
 * job control, not at numbers.
 *
 *   node out/test/e2e/fixtures.js DIR [MiB]   → DIR/stress-base, DIR/stress-chat, DIR/stress-cp
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const STRESS_MODELS = ['stress-base', 'stress-chat', 'stress-cp'] as const;

export function makeStressTrio(dir: string, mib = 768): { base: string; chat: string; cp: string } {
  const cols = 4096;
  const rows = Math.max(1, Math.floor((mib * 2 ** 20) / (cols * 4)));
  const bytes = rows * cols * 4;
  let header = JSON.stringify({
    __metadata__: { note: 'chat-vector e2e stress fixture (all zeros)' },
    'model.layers.0.mlp.down_proj.weight': { dtype: 'F32', shape: [rows, cols], data_offsets: [0, bytes] },
  });
  header += ' '.repeat((8 - (header.length % 8)) % 8);
  const out: string[] = [];
  for (const name of STRESS_MODELS) {
    const folder = path.join(dir, name);
    out.push(folder);
    const file = path.join(folder, 'model.safetensors');
    if (fs.existsSync(file) && fs.statSync(file).size === 8 + header.length + bytes) continue;
    fs.mkdirSync(folder, { recursive: true });
    fs.writeFileSync(path.join(folder, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: cols, num_hidden_layers: 1, torch_dtype: 'float32' }, null, 2));
    const fd = fs.openSync(file, 'w');
    try {
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(header.length));
      fs.writeSync(fd, len, 0, 8, 0);
      fs.writeSync(fd, Buffer.from(header, 'utf8'), 0, header.length, 8);
      fs.ftruncateSync(fd, 8 + header.length + bytes);
    } finally {
      fs.closeSync(fd);
    }
  }
  return { base: out[0]!, chat: out[1]!, cp: out[2]! };
}

if (require.main === module) {
  const [dir, mib] = process.argv.slice(2);
  if (!dir) {
    process.stderr.write('usage: fixtures.js DIR [MiB]\n');
    process.exit(2);
  }
  makeStressTrio(path.resolve(dir), mib ? Number(mib) : undefined);
}
