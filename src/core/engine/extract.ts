/**
 * extract: τ = chat − base for every tensor, matched by name, written as a safetensors checkpoint
 * folder plus chatvector.json (what it was made from). Default dtype float32, which is exact: the
 * float32 difference of two bf16/f16/f32 values is what apply would compute, so extract-then-apply
 * gives the same bytes as the fused apply.
 */
import type { Checkpoint } from '../checkpoint/checkpoint';
import { writeSmallFileSync } from '../io/outputFile';
import type { WorkerTask } from '../io/workerPool';
import type { ExtractOptions, JobContext, JobOutcome } from '../jobs/types';
import type { FloatDtype } from '../safetensors/dtype';
import { type TensorSpec, planCheckpoint } from '../safetensors/writer';
import { TOOL_VERSION } from '../version';
import { DEFAULT_MAX_SHARD_BYTES } from './apply';
import { differenceTasks, openExtractInputs } from './extractInputs';
import { runExtractLowRank } from './extractLowRank';
import { modelCard } from './modelFiles';
import { cardLabel, hubInputLines, hubSources } from '../hub/provenance';
import { JobInputs } from './jobInputs';
import { runOutputJob } from './outputJob';
import { type NonFinitePolicy, nonFiniteHint } from './nonFinite';
import { type ComputeJobContext, type ComputeScope, withCompute } from './computeSelection';
import { placeTensors } from './placement';

/** What chatvector.json records about a vector. */
export interface ChatVectorInfo {
  readonly format: 'chatvec/1';
  readonly base: string;
  readonly chat: string;
  readonly baseArchitecture: string | null;
  readonly chatArchitecture: string | null;
  readonly tensorCount: number;
  readonly dtype: FloatDtype;
  readonly skipEmbed: boolean;
  /** Non-float tensors left out of the vector (they are copied from the target on apply). */
  readonly skipped: readonly string[];
  readonly tool: string;
}

/**
 * Runs extract: the full vector, or with opts.rank a PEFT LoRA adapter (extractLowRank.ts).
 * @throws ChatVecError InvalidArgument when a difference is NaN/±Inf although both inputs are
 *   finite (e.g. beyond f16's range with --dtype f16), unless opts.allowNonFinite; BadCheckpoint,
 *   Unsupported (a quantized input: checkpoint/quantization.ts),
 *   NameMismatch, ShapeMismatch, OutputExists, Io; CancelledError when ctx.signal is raised
 */
export function runExtract(opts: ExtractOptions, ctx: ComputeJobContext = {}): Promise<JobOutcome> {
  if (opts.rank !== undefined || opts.energy !== undefined || (opts.rankFor?.length ?? 0) > 0) return runExtractLowRank(opts, ctx);
  return withCompute(opts.backend, ctx, (compute) => extractWith(opts, ctx, compute));
}

async function extractWith(opts: ExtractOptions, ctx: JobContext, computeScope: ComputeScope): Promise<JobOutcome> {
  const dtype = opts.dtype ?? 'F32';
  const skipEmbed = opts.skipEmbed === true;
  const { base, chat, kept, skipped } = openExtractInputs(opts.base, opts.chat, skipEmbed);
  const inputs = JobInputs.check(opts.out, opts.overwrite === true, [base, chat]);
  for (const line of hubInputLines([['base', base.path], ['chat', chat.path]])) ctx.onLog?.('info', line);

  const specs: TensorSpec[] = kept.map((t) => ({ name: t.name, dtype, shape: t.shape }));
  const info: ChatVectorInfo = {
    format: 'chatvec/1',
    base: base.path,
    chat: chat.path,
    baseArchitecture: base.architecture,
    chatArchitecture: chat.architecture,
    tensorCount: specs.length,
    dtype,
    skipEmbed,
    skipped,
    tool: `chatvec ${TOOL_VERSION}`,
  };
  // Chosen before planning: the output's metadata names it.
  const compute = await computeScope.select(kept.reduce((a, t) => a + 2 * t.byteLength, 0), opts.threads);
  const plan = planCheckpoint(specs, opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES, { chatvec: JSON.stringify({ operation: 'extract', ...info, hub_sources: hubSources([base.path, chat.path]), backend: compute.label }) });
  const placed = placeTensors(plan);
  const totalBytes = kept.reduce((a, t) => a + 2 * t.byteLength + placed.get(t.name)!.byteLength, 0);
  const warnings: string[] = [];
  const nonFinite: NonFinitePolicy = { allow: opts.allowNonFinite === true, hint: nonFiniteHint([], [dtype]), warnings };

  function* tasks(fileOf: (f: string) => string): Generator<WorkerTask> {
    for (const t of kept) {
      const out = placed.get(t.name)!;
      yield* differenceTasks(t, chat, { file: fileOf(out.fileName), position: out.position, dtype });
    }
  }

  const res = await runOutputJob(
    {
      inputs,
      plan,
      phase: 'extract',
      threads: opts.threads,
      compute,
      nonFinite,
      totalBytes,
      tasks,
      writeExtras: (file) => {
        writeSmallFileSync(file('chatvector.json'), JSON.stringify(info, null, 2) + '\n');
        writeSmallFileSync(file('README.md'), vectorCard(base, chat, info, warnings));
      },
    },
    ctx,
  );
  for (const w of warnings) ctx.onLog?.('warn', w);
  return { out: opts.out, tensorCount: specs.length, bytesWritten: res.bytesWritten, seconds: res.seconds, backend: res.backend, warnings };
}

function vectorCard(base: Checkpoint, chat: Checkpoint, info: ChatVectorInfo, warnings: readonly string[]): string {
  return modelCard('Chat vector', [
    'A chat vector τ = θ_chat − θ_base ([Chat Vector](https://arxiv.org/abs/2310.04799)), made by `chatvec extract`.',
    'Add it to a continually-pretrained model of the same architecture with `chatvec apply --target CP --vector THIS --out OUT`.',
    '',
    `- base: ${cardLabel(base.path)}`,
    `- chat: ${cardLabel(chat.path)}`,
    `- tensors: ${info.tensorCount}, dtype ${info.dtype}${info.skipEmbed ? ', input embeddings and LM head left out (--skip-embed)' : ''}`,
    `- tool: ${info.tool}`,
    ...(warnings.length ? ['', 'Warnings:', ...warnings.map((w) => `- ${w}`)] : []),
  ]);
}
