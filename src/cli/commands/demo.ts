import type { Command } from 'commander';
import { runApply } from '../../core/engine/apply';
import { runExtract } from '../../core/engine/extract';
import { verifyApply } from '../../core/engine/verify';
import { generateDemoTrio } from '../../core/demo/generator';
import { runGgufExport } from '../../core/gguf/export';
import { PRESET_NAMES, PRESETS, type PresetName } from '../../core/demo/presets';
import { specialTokenIds } from '../../core/demo/tokenizer';
import { ChatVecError } from '../../core/errors';
import { bar, formatBytes, formatDuration, parseDecimal } from '../../protocol/displayFormat';
import { join } from '../../core/io/paths';
import { BACKEND_HELP, parseBackend, parseThreads } from '../options';
import { progressPrinter } from '../progress';
import { action, interruptSignal } from '../run';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('generate a deterministic LLaMA-shaped trio (base, chat, cp), extract the chat vector, apply it to cp with --skip-embed, verify against a float64 reference, chart ‖τ‖ per layer and export the merge as GGUF (f16)')
    .option('--dir <dir>', 'where to put the demo checkpoints', '.chatvec-demo')
    .option('--preset <name>', `model size: ${PRESET_NAMES.join(' | ')}`, 'tiny')
    .option('--seed <n>', 'generator seed', '42')
    .option('--threads <n>', 'worker threads (default: all cores)')
    .option('--backend <kind>', BACKEND_HELP, 'auto')
    .option('--quiet', 'print only the result lines')
    .action(
      action(async (o: { dir: string; preset: string; seed: string; threads?: string; backend?: string; quiet?: boolean }) => {
        if (!PRESET_NAMES.includes(o.preset as PresetName)) throw new ChatVecError('InvalidArgument', `unknown preset "${o.preset}" (${PRESET_NAMES.join(', ')})`);
        const preset = o.preset as PresetName;
        const seed = parseDecimal(o.seed) ?? NaN;
        if (!Number.isSafeInteger(seed)) throw new ChatVecError('InvalidArgument', `--seed "${o.seed}" is not an integer`);
        const threads = parseThreads(o.threads);
        const backend = parseBackend(o.backend);
        const say = (s: string) => process.stdout.write(s + '\n');
        const signal = interruptSignal();
        const progress = progressPrinter(o.quiet ? 'quiet' : 'auto');
        try {
          const trio = generateDemoTrio(o.dir, preset, seed, (role) => !o.quiet && process.stderr.write(`generating ${preset} ${role} model…\n`));
          say(`1. demo checkpoints in ${trio.root}${trio.reused ? ' (reused)' : ''}: ${preset}-base, ${preset}-chat, ${preset}-cp (cp has ${PRESETS[preset].cpExtraVocab} extra vocabulary rows)`);
          const vector = join(o.dir, `${preset}-chat-vector`);
          const ex = await runExtract({ base: trio.base, chat: trio.chat, out: vector, overwrite: true, threads, backend }, { signal, onProgress: progress, onLog: (l, m) => process.stderr.write(`${l}: ${m}\n`) });
          progress.end();
          say(`2. extract  τ = chat − base → ${vector} (${ex.tensorCount} tensors, f32, ${formatBytes(ex.bytesWritten)}, ${formatDuration(ex.seconds)})`);
          const merged = join(o.dir, `${preset}-merged`);
          const ids = specialTokenIds(PRESETS[preset].vocab);
          const specialTokens = ids.map((id) => [id, id] as const);
          const ap = await runApply(
            { target: trio.cp, vectors: [vector], ratios: [1], out: merged, skipEmbed: true, specialTokens, overwrite: true, threads, backend },
            { signal, onProgress: progress, onLog: (l, m) => process.stderr.write(`${l}: ${m}\n`) },
          );
          progress.end();
          say(`3. apply    cp + 1.0·τ with --skip-embed, special tokens ${ids.join(',')} from chat → ${merged} (${formatBytes(ap.bytesWritten)}, ${formatDuration(ap.seconds)}, ${ap.backend})`);
          const v = verifyApply({ out: merged, target: trio.cp, base: trio.base, chats: [trio.chat], ratios: [1], skipEmbed: true, specialTokens });
          const share = ((100 * v.bitExact) / v.elements).toFixed(4);
          const ok = v.beyondOneUlp === 0;
          say(`4. verify   ${v.elements.toLocaleString('en-US')} elements against a float64 reference: ${share} % bit-exact, ${v.beyondOneUlp} beyond 1 ulp → ${ok ? 'VERIFIED' : 'MISMATCH'}`);
          say('');
          say('   ‖τ‖ per layer (chat − base), relative to ‖base‖:');
          const max = Math.max(...v.tauNormByGroup.map((g) => (Number.isFinite(g.relative) ? g.relative : 0)));
          for (const g of v.tauNormByGroup) {
            say(`   ${g.label.padEnd(11)} ${bar(max > 0 ? g.relative / max : 0, 32)} ${(100 * g.relative).toFixed(2).padStart(6)} %  ‖τ‖ ${g.norm.toFixed(3)}`);
          }
          if (!ok) throw new ChatVecError('Internal', `the merged output differs from the reference (worst: ${JSON.stringify(v.worst)})`);
          // The next step a user takes: the merge as one GGUF file for llama.cpp (as `chatvec gguf` writes it).
          const gguf = join(o.dir, `${preset}-merged.gguf`);
          const gg = await runGgufExport({ model: merged, out: gguf, type: 'F16', overwrite: true }, { signal, onProgress: progress });
          progress.end();
          say('');
          say(`5. gguf     ${merged} → ${gguf} (f16, ${formatBytes(gg.bytesWritten)}, ${formatDuration(gg.seconds)}), ready for llama.cpp`);
          say(`   for q8_0, or any LLaMA-family checkpoint: chatvec gguf ${merged} --out ${join(o.dir, `${preset}-merged.q8_0.gguf`)} --type q8_0`);
        } finally {
          progress.end();
          signal.dispose();
        }
      }),
    );
}
