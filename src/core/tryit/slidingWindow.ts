/**
 * The sliding windows of a perplexity evaluation, as in Hugging Face's perplexity guide
 * (docs/transformers "Perplexity of fixed-length models"): windows of at most `context` tokens
 * starting every `stride` tokens; each window scores only the tokens that no earlier window
 * scored, so every token but the first is scored exactly once, with at least
 * `context − stride` tokens before it (or all of them, near the start). With
 * `context ≥ length` there is one window and every token sees the whole text before it.
 */
import { ChatVecError } from '../errors';

export interface EvalWindow {
  /** Token positions [begin, end) are the model's input. */
  readonly begin: number;
  readonly end: number;
  /** Positions [scoredFrom, end) are scored (scoredFrom ≥ begin + 1: the first input has no prediction). */
  readonly scoredFrom: number;
}

/**
 * The windows over `length` tokens.
 * @throws ChatVecError InvalidArgument when context < 2, stride < 1 or stride > context (tokens
 *   would be skipped), or when there are fewer than 2 tokens
 */
export function slidingWindows(length: number, context: number, stride: number): EvalWindow[] {
  if (!Number.isInteger(context) || context < 2) throw new ChatVecError('InvalidArgument', `--context ${context}: must be a whole number of at least 2 tokens`);
  if (!Number.isInteger(stride) || stride < 1 || stride > context) throw new ChatVecError('InvalidArgument', `--stride ${stride}: must be a whole number from 1 to the context (${context})`);
  if (length < 2) throw new ChatVecError('InvalidArgument', `${length} token${length === 1 ? '' : 's'}: at least 2 are needed to score one`);
  const out: EvalWindow[] = [];
  let prevEnd = 0;
  for (let begin = 0; begin < length; begin += stride) {
    const end = Math.min(begin + context, length);
    out.push({ begin, end, scoredFrom: Math.max(prevEnd, begin + 1) });
    prevEnd = end;
    if (end === length) break;
  }
  return out;
}
