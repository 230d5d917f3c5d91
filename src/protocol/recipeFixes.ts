/**
 * Quick Fixes for recipe diagnostics. The recipe checker (src/core/recipes/schema.ts) ends a
 * message about a misspelt key or value with " (did you mean `x`?)" or " (write it exactly `x`: …)";
 * the fix replaces the diagnostic's range (the key or the value) with `x`.
 */

/** The replacement a diagnostic's message suggests, or null when it suggests none. */
export function suggestedReplacement(message: string): string | null {
  const m = /\((?:did you mean|write it exactly) `([^`]+)`[?:]/.exec(message);
  return m ? m[1]! : null;
}
