/**
 * The multi-step dialogs of Apply, Extract and Compare (./wizard.ts: step counts that follow the
 * choices, a Back button). When Base and Chat are set in the Checkpoints view, Apply and Extract
 * offer them as one choice instead of two picks. Answers are kept in the flow's state, so Back
 * shows the earlier answer highlighted.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { parseRankChoice } from '../protocol/rankChoice';
import type { ApplyOptions, ExtractOptions } from '../protocol/taskHost';
import type { Settings } from './config';
import type { Ctx } from './ctx';
import {
  checkpointItems,
  type CheckpointPick,
  type CheckpointPickOptions,
  inspectOf,
  jobCommon,
  type OptionPick,
  outputValidation,
  parseRatios,
  pickedPath,
  pickMany,
  siblingPath,
  skipDefault,
  vocabReason,
  vocabSizes,
} from './flowSteps';
import { untrainedSpecialTokens } from './specialTokens';
import { BACK, type Step, Wizard } from './wizard';

/** A step that picks one checkpoint into the state (`read`/`write`). */
function checkpointStep<S>(ctx: Ctx, o: (s: S) => CheckpointPickOptions, read: (s: S) => string | null | undefined, write: (s: S, p: string | null) => void): Step<S> {
  return async (w, s) => {
    for (;;) {
      const opts = o(s);
      const items = await checkpointItems(ctx, opts);
      const before = read(s);
      const active = items.find((i) => (before === null ? i.none : i.path !== undefined && i.path === before));
      const pick = await w.pick<CheckpointPick>({ items, placeholder: opts.placeHolder, ...(active ? { active } : {}) });
      if (pick === BACK || pick === undefined) return pick;
      const p = await pickedPath(pick, w.title);
      if (p === undefined) continue; // Browse… dismissed: the same step again
      write(s, p);
      return 'next';
    }
  };
}

type Source = 'roles' | 'fused' | 'vectors';
interface SourcePick extends vscode.QuickPickItem {
  readonly id: Source;
}

/** Base and Chat from the Checkpoints view, when both are set and neither is `exclude`. */
function rolePair(ctx: Ctx, exclude?: string): { base: string; chat: string } | undefined {
  const base = ctx.roles.get('base');
  const chat = ctx.roles.get('chat');
  return base && chat && base !== exclude && chat !== exclude ? { base, chat } : undefined;
}

function outputStep<S extends { out?: string }>(suggest: (s: S) => string): Step<S> {
  return async (w, s) => {
    const value = s.out ?? suggest(s);
    const out = await w.input({
      prompt: 'Output folder (written atomically: nothing appears there until the job has finished)',
      value,
      valueSelection: [value.length - path.basename(value).length, value.length],
      validate: outputValidation,
    });
    if (out === BACK || out === undefined) return out;
    s.out = out.trim();
    return 'next';
  };
}

/**
 * Asked when "Skip embeddings" was unticked although the vocabularies differ (the job would fail):
 * true to tick it again and go on, false to return to the options.
 */
async function keepSkipEmbeddings(reason: string): Promise<boolean> {
  const pick = await vscode.window.showWarningMessage(
    'Without "Skip embeddings" this job fails: the vocabularies differ.',
    { modal: true, detail: `${reason[0]!.toUpperCase()}${reason.slice(1)}. The embeddings and LM head of models with different vocabularies cannot be combined row by row.` },
    'Skip Embeddings',
  );
  return pick === 'Skip Embeddings';
}

// ---------------------------------------------------------------------------------------------
// Apply

interface ApplyState {
  target?: string;
  source?: Source;
  base?: string;
  chat?: string;
  vectors?: string[];
  ratioText?: string;
  options?: readonly OptionPick['id'][];
  tokenMap?: [number, number][];
  out?: string;
}

/** Apply's questions: target, where τ comes from, ratio(s), options, output folder. */
export async function askApply(ctx: Ctx, s: Settings, preTarget?: string): Promise<ApplyOptions | undefined> {
  const st: ApplyState = { ...(preTarget ? { target: preTarget } : {}) };
  const target = checkpointStep<ApplyState>(
    ctx,
    () => ({ title: 'Apply Chat Vector', placeHolder: 'Target: the continually-pretrained model that should learn to chat', prefer: 'target' }),
    (x) => x.target,
    (x, p) => (x.target = p ?? undefined),
  );
  const source: Step<ApplyState> = async (w, x) => {
    const pair = rolePair(ctx, x.target);
    const items: SourcePick[] = [
      ...(pair ? [{ id: 'roles' as const, label: `$(merge) ${path.basename(pair.base)} → ${path.basename(pair.chat)}`, description: 'Base and Chat', detail: 'τ = chat − base, computed on the fly; nothing extra is written' }] : []),
      { id: 'fused', label: pair ? '$(merge) Another base model and chat model…' : '$(merge) A base model and a chat model…', detail: 'pick both next; τ = chat − base, computed on the fly' },
      { id: 'vectors', label: '$(symbol-operator) Chat vector or LoRA adapter folder(s)…', detail: 'from "Extract Chat Vector…" or PEFT LoRA adapters; one ratio each' },
    ];
    const pick = await w.pick({ items, placeholder: 'Where does the chat vector come from?', active: items.find((i) => i.id === x.source) ?? items[0]! });
    if (pick === BACK || pick === undefined) return pick;
    x.source = pick.id;
    if (pick.id === 'roles' && pair) [x.base, x.chat] = [pair.base, pair.chat];
    return 'next';
  };
  const base = checkpointStep<ApplyState>(
    ctx,
    (x) => ({ title: 'Apply Chat Vector', placeHolder: 'Base model (the chat model was fine-tuned from it)', prefer: 'base', exclude: x.target ? [x.target] : [] }),
    (x) => x.base,
    (x, p) => (x.base = p ?? undefined),
  );
  const chat = checkpointStep<ApplyState>(
    ctx,
    (x) => ({ title: 'Apply Chat Vector', placeHolder: 'Chat model (fine-tuned from the base)', prefer: 'chat', exclude: [x.target, x.base].filter((v): v is string => !!v) }),
    (x) => x.chat,
    (x, p) => (x.chat = p ?? undefined),
  );
  const vectors: Step<ApplyState> = async (w, x) => {
    // The multi-select pick of folders is its own dialog (Browse… may add more); Escape there goes back.
    const v = await pickMany(ctx, `${w.title} (${w.step}/${w.total})`, 'One or more chat-vector or LoRA adapter folders (each gets its own ratio)');
    if (!v) return BACK;
    x.vectors = v;
    return 'next';
  };
  const ratio: Step<ApplyState> = async (w, x) => {
    const n = x.source === 'vectors' ? (x.vectors?.length ?? 1) : 1;
    const r = await w.input({
      prompt: n > 1 ? `Ratio for each of the ${n} vectors, comma-separated (or one for all)` : 'Ratio r in θ_out = θ_target + r·τ (the paper also uses 0.5 against answers in the wrong language)',
      value: x.ratioText ?? String(s.defaultRatio),
      validate: (v) => {
        const rs = parseRatios(v);
        if (!rs) return 'Enter numbers separated by commas, e.g. 1 or 0.5, 0.5.';
        if (rs.length !== 1 && rs.length !== n) return `Enter one ratio or ${n}.`;
        return undefined;
      },
    });
    if (r === BACK || r === undefined) return r;
    x.ratioText = r;
    return 'next';
  };
  const options: Step<ApplyState> = async (w, x) => {
    // What the inputs say (vocabulary sizes, untrained special tokens), pre-selected.
    const tReport = await inspectOf(ctx, x.target!);
    const other = x.source === 'vectors' ? x.vectors?.[0] : x.chat;
    const oReport = other ? await inspectOf(ctx, other).catch(() => undefined) : undefined;
    const reason = oReport ? vocabReason(tReport, oReport, x.source === 'vectors' ? 'vector' : 'chat') : null;
    const was = (id: OptionPick['id'], dflt: boolean) => (x.options ? x.options.includes(id) : dflt);
    const items: OptionPick[] = [
      // Each line short enough for the quick pick's width (nothing is cut off with "…"); the dialog says more.
      {
        id: 'skipEmbed',
        label: 'Skip embeddings',
        description: reason ? 'recommended: the vocabularies differ' : 'take embed_tokens and lm_head from the target',
        detail: reason && oReport ? `${vocabSizes(tReport, 'target', oReport, x.source === 'vectors' ? 'vector' : 'chat')}: the target's embeddings and LM head are kept` : 'The vocabularies match.',
        picked: was('skipEmbed', skipDefault(s, reason)),
      },
    ];
    const chatForTokens = x.source === 'vectors' ? ctx.roles.get('chat') : x.chat;
    x.tokenMap = [];
    if (chatForTokens) {
      const rows = await untrainedSpecialTokens(chatForTokens, tReport, ctx.host.api).catch((e: unknown) => {
        ctx.log.warn(`special-token check: ${String(e)}`);
        return [];
      });
      if (rows.length) {
        x.tokenMap = rows.map((r) => [r.targetId, r.chatId]);
        // The row ids (target ← chat) go to the log: in the pick they would be cut off.
        ctx.log.info(`special tokens untrained in ${path.basename(x.target!)}: ${rows.map((r) => `${r.token} ${r.targetId} ← ${r.chatId}`).join(', ')}`);
        items.push({
          id: 'specialTokens',
          label: `Map ${rows.length} special token${rows.length > 1 ? 's' : ''} from the chat model`,
          description: rows.length > 3 ? `${rows.slice(0, 3).map((r) => r.token).join(' ')} …` : rows.map((r) => r.token).join(' '),
          detail: 'untrained in the target (rows near zero), used by the chat template',
          picked: was('specialTokens', true),
        });
      }
    }
    for (;;) {
      const picked = await w.pickMany({ items, placeholder: 'Options (Space toggles, Enter continues)' });
      if (picked === BACK || picked === undefined) return picked;
      x.options = picked.map((p) => p.id);
      if (!reason || x.options.includes('skipEmbed')) return 'next';
      // The known-bad choice: the job would fail after reading everything.
      if (!(await keepSkipEmbeddings(reason))) {
        for (const i of items) i.picked = x.options.includes(i.id);
        continue;
      }
      x.options = [...x.options, 'skipEmbed'];
      return 'next';
    }
  };
  const output = outputStep<ApplyState>((x) => siblingPath(x.target!, '-chat'));

  const sourceKind = (): Source => st.source ?? (rolePair(ctx, st.target) ? 'roles' : 'fused');
  const done = await Wizard.run('Apply Chat Vector', st, () => [
    ...(preTarget ? [] : [target]),
    source,
    ...(sourceKind() === 'fused' ? [base, chat] : sourceKind() === 'vectors' ? [vectors] : []),
    ratio,
    options,
    output,
  ]);
  if (!done || !st.target || !st.out) return undefined;
  const vectorsSel = st.source === 'vectors' ? st.vectors : undefined;
  if (!vectorsSel && (!st.base || !st.chat)) return undefined;
  return {
    target: st.target,
    ...(vectorsSel ? { vectors: vectorsSel } : { base: st.base, chats: [st.chat!] }),
    ratios: parseRatios(st.ratioText ?? String(s.defaultRatio))!,
    out: st.out,
    skipEmbed: !!st.options?.includes('skipEmbed'),
    ...(st.options?.includes('specialTokens') && st.tokenMap?.length ? { specialTokens: st.tokenMap } : {}),
    ...jobCommon(s),
    ...(s.outputDtype !== 'auto' ? { dtype: s.outputDtype } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Extract

interface ExtractState {
  source?: 'roles' | 'pick';
  base?: string;
  chat?: string;
  /** 'full': τ exactly (chatvector.json folder); 'lowRank': a PEFT LoRA adapter (extract --rank). */
  kind?: 'full' | 'lowRank';
  rankText?: string;
  skipEmbed?: boolean;
  out?: string;
}

/** What the rank field starts with: a common LoRA rank. */
const DEFAULT_RANK_TEXT = '16';

/** Extract's questions: base and chat (one confirmation when the roles are set), full or low-rank (and the rank), options, output folder. */
export async function askExtract(ctx: Ctx, s: Settings): Promise<Omit<ExtractOptions, 'overwrite'> | undefined> {
  const st: ExtractState = {};
  const pair = rolePair(ctx);
  const source: Step<ExtractState> = async (w, x) => {
    const items = [
      { id: 'roles' as const, label: `$(merge) ${path.basename(pair!.base)} → ${path.basename(pair!.chat)}`, description: 'Base and Chat', detail: 'τ = chat − base' },
      { id: 'pick' as const, label: '$(list-selection) Other models…', detail: 'pick the base and the chat model next' },
    ];
    const pick = await w.pick({ items, placeholder: 'Which models?', active: items.find((i) => i.id === x.source) ?? items[0]! });
    if (pick === BACK || pick === undefined) return pick;
    x.source = pick.id;
    if (pick.id === 'roles') [x.base, x.chat] = [pair!.base, pair!.chat];
    return 'next';
  };
  const base = checkpointStep<ExtractState>(
    ctx,
    () => ({ title: 'Extract Chat Vector', placeHolder: 'Base model (the chat model was fine-tuned from it)', prefer: 'base' }),
    (x) => x.base,
    (x, p) => (x.base = p ?? undefined),
  );
  const chat = checkpointStep<ExtractState>(
    ctx,
    (x) => ({ title: 'Extract Chat Vector', placeHolder: 'Chat model', prefer: 'chat', exclude: x.base ? [x.base] : [] }),
    (x) => x.chat,
    (x, p) => (x.chat = p ?? undefined),
  );
  const kind: Step<ExtractState> = async (w, x) => {
    const items = [
      { id: 'full' as const, label: '$(symbol-operator) Full (exact)', detail: 'τ = chat − base for every tensor, as large as the model' },
      { id: 'lowRank' as const, label: '$(layers) Low-rank adapter (rank …)', detail: 'loads in PEFT and vLLM; within 1 % of the best rank-r error' },
    ];
    const pick = await w.pick({ items, placeholder: 'Write the chat vector in full, or as a LoRA adapter?', active: items.find((i) => i.id === x.kind) ?? items[0]! });
    if (pick === BACK || pick === undefined) return pick;
    x.kind = pick.id;
    return 'next';
  };
  const rank: Step<ExtractState> = async (w, x) => {
    const v = await w.input({
      prompt: 'Rank per matrix (e.g. 16), or a largest rank and the energy each matrix keeps (e.g. 64 @ 0.9: the fewest components holding 90 % of ‖τ‖²)',
      value: x.rankText ?? DEFAULT_RANK_TEXT,
      validate: (t) => {
        const c = parseRankChoice(t);
        return typeof c === 'string' ? c : undefined;
      },
    });
    if (v === BACK || v === undefined) return v;
    x.rankText = v;
    return 'next';
  };
  const options: Step<ExtractState> = async (w, x) => {
    const [rb, rc] = await Promise.all([inspectOf(ctx, x.base!), inspectOf(ctx, x.chat!)]);
    const reason = vocabReason(rb, rc, 'chat');
    const items: OptionPick[] = [
      {
        id: 'skipEmbed',
        label: 'Skip embeddings',
        description: reason ? 'recommended: the vocabularies differ' : 'leave embed_tokens and lm_head out of the vector',
        detail: reason ? `${vocabSizes(rb, 'base', rc, 'chat')}: embeddings and LM head are left out` : 'The vocabularies match.',
        picked: x.skipEmbed ?? skipDefault(s, reason),
      },
    ];
    for (;;) {
      const picked = await w.pickMany({ items, placeholder: 'Options (Space toggles, Enter continues)' });
      if (picked === BACK || picked === undefined) return picked;
      x.skipEmbed = picked.some((p) => p.id === 'skipEmbed') || (!!reason && (await keepSkipEmbeddings(reason)));
      if (reason && !x.skipEmbed) {
        items[0]!.picked = false;
        continue;
      }
      return 'next';
    }
  };
  const output = outputStep<ExtractState>((x) => siblingPath(x.chat!, x.kind === 'lowRank' ? '-lora' : '-vector'));
  const done = await Wizard.run('Extract Chat Vector', st, (x) => [...(pair ? [source] : []), ...(!pair || x.source === 'pick' ? [base, chat] : []), kind, ...(x.kind === 'lowRank' ? [rank] : []), options, output]);
  if (!done || !st.base || !st.chat || !st.out) return undefined;
  const common = { base: st.base, chat: st.chat, out: st.out, skipEmbed: !!st.skipEmbed, ...jobCommon(s) };
  if (st.kind === 'lowRank') {
    // An adapter's factors are float32 (the accuracy rule is measured on them): no output dtype.
    const c = parseRankChoice(st.rankText ?? DEFAULT_RANK_TEXT);
    return typeof c === 'string' ? undefined : { ...common, rank: c.rank, ...(c.energy !== undefined ? { energy: c.energy } : {}) };
  }
  return { ...common, ...(s.outputDtype !== 'auto' ? { dtype: s.outputDtype } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Compare

interface CompareState {
  a?: string;
  b?: string | null;
}

/**
 * Compare's questions: A (unless given) and B, or "Nothing" for a chat-vector folder alone.
 * `isVector` says whether a path is a chat-vector folder.
 */
export async function askCompare(ctx: Ctx, preA: string | undefined, isVector: (p: string) => boolean): Promise<{ a: string; b: string | null } | undefined> {
  const st: CompareState = { ...(preA ? { a: preA } : {}) };
  const a = checkpointStep<CompareState>(
    ctx,
    () => ({ title: 'Compare Checkpoints', placeHolder: 'Checkpoint A (the reference, e.g. the base model)', prefer: 'base' }),
    (x) => x.a,
    (x, p) => (x.a = p ?? undefined),
  );
  const b = checkpointStep<CompareState>(
    ctx,
    (x) => ({
      title: 'Compare Checkpoints',
      placeHolder: `Compare ${path.basename(x.a!)} with…`,
      prefer: ctx.roles.roleOf(x.a!) === 'chat' ? 'base' : 'chat',
      exclude: [x.a!],
      // Only a chat-vector folder (chatvector.json, written by extract) can be shown alone.
      ...(isVector(x.a!) ? { none: `$(symbol-operator) Nothing: ${path.basename(x.a!)} is a chat vector, show its own magnitudes` } : {}),
    }),
    (x) => x.b,
    (x, p) => (x.b = p),
  );
  const done = await Wizard.run('Compare Checkpoints', st, () => [...(preA ? [] : [a]), b]);
  return done && st.a && st.b !== undefined ? { a: st.a, b: st.b } : undefined;
}
