/**
 * A conversation rendered with the model's own chat template (the Jinja text of the GGUF's
 * `tokenizer.chat_template`, which the export copies from tokenizer_config.json or
 * chat_template.jinja), as Hugging Face's `apply_chat_template(..., add_generation_prompt=True)`
 * renders it: `messages`, `add_generation_prompt`, the special tokens' texts (`raise_exception` is
 * @huggingface/jinja's own).
 */
import { ChatVecError } from '../errors';

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  readonly role: ChatRole;
  readonly content: string;
}

/** The special tokens' texts a template may use (`{{ bos_token }}` …); null when the model has none. */
export interface TemplateTokens {
  readonly bos_token: string | null;
  readonly eos_token: string | null;
}

/**
 * The prompt text for `messages` followed by the assistant's turn.
 * @throws ChatVecError Unsupported when there is no template, or it does not parse or render
 *   (naming the template's own message for `raise_exception`)
 */
export async function renderChatPrompt(template: string | null, messages: readonly ChatMessage[], tokens: TemplateTokens): Promise<string> {
  if (template === null || template.trim() === '') {
    throw new ChatVecError('Unsupported', 'the model has no chat template (tokenizer.chat_template in tokenizer_config.json or chat_template.jinja); use `chatvec eval` for a base model');
  }
  // An ES module, loaded on first use (bundled into dist by esbuild).
  const { Template } = await import('@huggingface/jinja');
  let t: InstanceType<typeof Template>;
  try {
    t = new Template(template);
  } catch (e) {
    throw new ChatVecError('Unsupported', `the model's chat template does not parse: ${(e as Error).message}`);
  }
  try {
    return t.render({
      messages,
      add_generation_prompt: true,
      bos_token: tokens.bos_token ?? '',
      eos_token: tokens.eos_token ?? '',
    });
  } catch (e) {
    throw new ChatVecError('Unsupported', `the model's chat template cannot render this conversation: ${(e as Error).message}`);
  }
}
