/**
 * chatvec's `chat_vector` (not a mergekit method): target + Σ rᵢ·(chatᵢ − base), run as the
 * engine's fused apply. Its settings are top-level keys (target_model, chat_models, …), not
 * `parameters:`.
 */
import type { MergeMethodDef } from './method';

export const CHAT_VECTOR: MergeMethodDef<'chat_vector'> = {
  name: 'chat_vector',
  prettyName: 'Chat Vector',
  referenceUrl: 'https://arxiv.org/abs/2310.04799',
  kind: 'chat_vector',
  parameters: [],
  needsBase: true,
  usesSeed: false,
  output: 'target + Σ rᵢ·(chatᵢ − base)',
  parametersNote: 'see below',
};
