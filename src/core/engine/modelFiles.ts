/**
 * The small files around the weights of an output checkpoint: the target's config (torch_dtype set
 * to the output dtype) and tokenizer files, with the chat model's chat template and eos token; the
 * generation config's eos ids from the chat model when those tokens have the same ids in the
 * target's vocabulary (else the target's, with a warning); and a README model card.
 *
 * Every file taken from an input folder must belong to it (links may lead only into the folder or,
 * in the Hugging Face hub cache, into the same repository's blobs/) and be a regular file within
 * its size cap; any other is left out of the output with a warning, so that a crafted checkpoint
 * cannot copy a private file (a `tokenizer.model` linked to ~/.ssh/id_ed25519) into an output.
 */
import { readVocabulary } from '../checkpoint/tokenizerVocab';
import { ChatVecError } from '../errors';
import { writeSmallFileSync } from '../io/outputFile';
import { join } from '../io/paths';
import { type SideFileKind, locateSideFile, parseJsonObject, readSideFile } from '../io/sideFile';

/** Tokenizer-side files copied from the target when present. */
export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer.model',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
  'vocab.txt',
  'chat_template.jinja',
  'chat_template.json',
];

function kindOf(name: string): SideFileKind {
  return name.endsWith('.json') ? 'json' : name.endsWith('.jinja') ? 'template' : 'tokenizer';
}

/**
 * The bytes of side file `name` of input folder `folder`; null when it is absent or must not be
 * used (a link out of the folder, not a regular file, over its cap: said in `warnings`, since the
 * weights are already written by now and are not thrown away for a side file).
 * @throws ChatVecError Io when the file exists but cannot be read
 */
function readSide(folder: string, name: string, warnings: string[]): Buffer | null {
  // A file may be read twice (merge reads the reference's config.json again): say it once.
  const warn = (w: string) => warnings.includes(w) || warnings.push(w);
  const at = locateSideFile(folder, name);
  if (at.status === 'missing') return null;
  if (at.status === 'outside') {
    // Where it leads is left out: warnings also go into the output's model card.
    warn(`${join(folder, name)}: not copied into the output: it is a link that leads outside the checkpoint folder`);
    return null;
  }
  try {
    // The resolved path, so that what is read is what was checked.
    return readSideFile(at.real, kindOf(name));
  } catch (e) {
    if (!(e instanceof ChatVecError) || e.code !== 'BadCheckpoint') throw e;
    warn(`${e.message}; not copied into the output`);
    return null;
  }
}

/**
 * JSON side file `name` of input folder `folder`, for an output; null when absent or skipped (a
 * link out of the folder, not a regular file, over 64 MiB: said in `warnings`).
 * @throws ChatVecError BadCheckpoint when it is not a JSON object; Io when unreadable
 */
export function readSideJson(folder: string, name: string, warnings: string[]): Record<string, unknown> | null {
  const bytes = readSide(folder, name, warnings);
  return bytes === null ? null : parseJsonObject(join(folder, name), bytes.toString('utf8'));
}

function json(v: unknown): string {
  return JSON.stringify(v, null, 2) + '\n';
}

export interface ModelFilesInput {
  /** Folder of the target (CP) model. */
  readonly target: string;
  /** Folder of the (last) chat model, whose template and eos token are taken; null for none. */
  readonly chat: string | null;
  /** torch_dtype name for config.json (e.g. "bfloat16"); null keeps the target's. */
  readonly torchDtype: string | null;
  readonly warnings: string[];
  /** Folder of the tokenizer files when not the target's (a tokenizer source); config.json stays the target's. */
  readonly tokenizer?: string;
  /** vocab_size for config.json when the vocabulary was rebuilt. */
  readonly vocabSize?: number;
}

/** Writes config, tokenizer and generation files into the output via `file(name)`. */
export function writeModelFiles(inp: ModelFilesInput, file: (name: string) => string): void {
  const w = inp.warnings;
  const tok = inp.tokenizer ?? inp.target;
  const config = readSideJson(inp.target, 'config.json', w);
  if (config) {
    if (inp.torchDtype) config.torch_dtype = inp.torchDtype;
    if (inp.vocabSize !== undefined) config.vocab_size = inp.vocabSize;
    writeSmallFileSync(file('config.json'), json(config));
  }
  const chatTok = inp.chat ? readSideJson(inp.chat, 'tokenizer_config.json', w) : null;
  const chatJinja = inp.chat ? (readSide(inp.chat, 'chat_template.jinja', w)?.toString('utf8') ?? null) : null;
  const chatHasTemplate = chatJinja !== null || (chatTok?.chat_template !== undefined && chatTok.chat_template !== null);
  for (const name of TOKENIZER_FILES) {
    // transformers prefers chat_template.jinja (and chat_template.json) to tokenizer_config.json's
    // chat_template: the target's must not shadow the chat model's template.
    if (chatHasTemplate && (name === 'chat_template.jinja' || name === 'chat_template.json')) continue;
    // These two are rewritten below (with the chat model's template and eos token).
    if (name === 'tokenizer_config.json' || name === 'special_tokens_map.json') continue;
    const bytes = readSide(tok, name, w);
    if (bytes !== null) writeSmallFileSync(file(name), bytes);
  }
  const tokConfig = readSideJson(tok, 'tokenizer_config.json', w);
  const specialMap = readSideJson(tok, 'special_tokens_map.json', w);
  const genConfig = readSideJson(inp.target, 'generation_config.json', w);

  if (inp.chat) {
    if (chatJinja !== null) {
      writeSmallFileSync(file('chat_template.jinja'), chatJinja);
      // A template of the target's own in tokenizer_config.json would disagree with the file.
      if (tokConfig && tokConfig.chat_template !== undefined) tokConfig.chat_template = chatJinja;
    } else if (chatHasTemplate && tokConfig) {
      tokConfig.chat_template = chatTok!.chat_template;
    } else if (chatHasTemplate && typeof chatTok!.chat_template === 'string') {
      writeSmallFileSync(file('chat_template.jinja'), chatTok!.chat_template);
    } else {
      inp.warnings.push(
        chatHasTemplate
          ? `${inp.chat}'s chat template could not be carried over (the target has no tokenizer_config.json to hold it)`
          : `${inp.chat} has no chat template; the output keeps the target's`,
      );
    }
    if (chatTok && chatTok.eos_token !== undefined) {
      if (tokConfig) tokConfig.eos_token = chatTok.eos_token;
      if (specialMap) specialMap.eos_token = chatTok.eos_token;
    }
    const chatGen = readSideJson(inp.chat, 'generation_config.json', w);
    if (chatGen && chatGen.eos_token_id !== undefined) {
      const out = genConfig ?? {};
      const mapped = sameIdsInTarget(inp.chat, tok, chatGen.eos_token_id);
      if (mapped.ok) {
        out.eos_token_id = chatGen.eos_token_id;
      } else {
        inp.warnings.push(`generation_config.json: kept the target's eos_token_id; ${mapped.why}`);
      }
      writeSmallFileSync(file('generation_config.json'), json(out));
    } else if (genConfig) {
      writeSmallFileSync(file('generation_config.json'), json(genConfig));
    }
  } else if (genConfig) {
    writeSmallFileSync(file('generation_config.json'), json(genConfig));
  }
  if (tokConfig) writeSmallFileSync(file('tokenizer_config.json'), json(tokConfig));
  if (specialMap) writeSmallFileSync(file('special_tokens_map.json'), json(specialMap));
}

function sameIdsInTarget(chat: string, target: string, eos: unknown): { ok: true } | { ok: false; why: string } {
  const ids = Array.isArray(eos) ? eos : [eos];
  const cv = readVocabulary(chat);
  const tv = readVocabulary(target);
  for (const id of ids) {
    if (typeof id !== 'number') return { ok: false, why: `the chat model's eos_token_id ${JSON.stringify(id)} is not a number` };
    const tok = cv.tokenOf(id);
    if (tok === undefined) return { ok: false, why: `token id ${id} is not in the chat model's tokenizer files` };
    const tid = tv.idOf(tok);
    if (tid !== id) {
      return { ok: false, why: `the chat model's eos token ${JSON.stringify(tok)} (id ${id}) is ${tid === undefined ? 'missing from' : `id ${tid} in`} the target's vocabulary` };
    }
  }
  return { ok: true };
}

/** A Markdown model card stating how the output was made. */
export function modelCard(title: string, lines: readonly string[]): string {
  return [`# ${title}`, '', ...lines, ''].join('\n');
}
