// What the extension says when a job ends, and where a job's warnings land in a recipe.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countOf, isVocabularyMismatch, jobDoneMessage, lowRankText, recipeWarningRanges, uiErrorText, userFacingHostText } from '../../src/protocol/jobText';

const facts = { tensorCount: 39, bytesWritten: 501_234, seconds: 0.123, backend: 'cpu (2 threads)', warnings: [] as string[] };

describe('job completion text', () => {
  it('counts with the right plural', () => {
    assert.equal(countOf(1, 'tensor'), '1 tensor');
    assert.equal(countOf(0, 'tensor'), '0 tensors');
    assert.equal(countOf(2, 'warning'), '2 warnings');
    assert.equal(countOf(3, 'matrix', 'matrices'), '3 matrices');
  });

  it('says where it ran without nested parentheses, and "1 tensor"', () => {
    assert.equal(jobDoneMessage('Chat vector applied', 'out', facts), 'Chat vector applied: out — 39 tensors, 501 kB in 0.1 s on cpu (2 threads).');
    assert.equal(jobDoneMessage('Extracted', 'v', { ...facts, tensorCount: 1 }), 'Extracted: v — 1 tensor, 501 kB in 0.1 s on cpu (2 threads).');
  });

  it('extract --rank: says how much of τ the adapter captured', () => {
    const lowRank = { matrices: 12, energy: 0.934149, relativeError: 0.256712 };
    assert.equal(
      jobDoneMessage('LoRA adapter extracted', 'a', { ...facts, lowRank }),
      'LoRA adapter extracted: a — 39 tensors, 501 kB in 0.1 s on cpu (2 threads); 12 matrices factored: 93.41 % of the energy captured, relative error 25.67 %.',
    );
    assert.equal(lowRankText({ matrices: 1, energy: 1, relativeError: 0 }), '1 matrix factored: 100.00 % of the energy captured, relative error 0.00 %');
  });

  it('quotes the first warning, shortened, and counts the others', () => {
    const one = jobDoneMessage('Applied', 'o', { ...facts, warnings: ['the chat model has no chat template'] });
    assert.match(one, /\. 1 warning: the chat model has no chat template$/);
    const long = 'x'.repeat(400);
    const many = jobDoneMessage('Applied', 'o', { ...facts, warnings: [long, 'second'] });
    assert.match(many, /2 warnings, the first: x+…$/);
    assert.ok(many.length < 300, many);
  });
});

describe('recipe warning ranges', () => {
  const recipe = [
    '# comment',
    'merge_method: task_arithmetic',
    'base_model: ../demo/tiny-base',
    'models:',
    '  - model: ../demo/tiny-chat',
    '    parameters:',
    '      weight: 0.7',
    '  - model: "../demo/tiny-cp"  # the CP model',
    'dtype: bfloat16',
  ].join('\n');

  it("puts a warning about the base model's size on the base_model line", () => {
    const [r] = recipeWarningRanges(recipe, ['model.embed_tokens.weight: vocabularies differ; using the first 256 rows of every model (the base model\'s size), as mergekit does']);
    assert.deepEqual({ line: r!.line, column: r!.column, endColumn: r!.endColumn }, { line: 2, column: 0, endColumn: 'base_model: ../demo/tiny-base'.length });
  });

  it("puts a warning naming a model on that model's line (the longest matching path wins)", () => {
    const [r] = recipeWarningRanges(recipe, ['../demo/tiny-cp: 4 tensors not in the base model were left out']);
    assert.equal(r!.line, 7);
    assert.equal(r!.column, 2);
    const [c] = recipeWarningRanges(recipe, ['../demo/tiny-chat has no chat template']);
    assert.equal(c!.line, 4);
  });

  it('puts any other warning on the merge_method line, or line 0 without one', () => {
    const [r] = recipeWarningRanges(recipe, ['lm_head.weight: vocabularies differ; using the first 256 rows of every model (the smallest), as mergekit does']);
    assert.equal(r!.line, 1);
    assert.equal(r!.endColumn, 'merge_method: task_arithmetic'.length);
    assert.equal(recipeWarningRanges('dtype: float16\n', ['something'])[0]!.line, 0);
  });
});

describe('host messages in the user\'s words', () => {
  it('calls the task host the background process, keeping the rest', () => {
    assert.equal(userFacingHostText('the task host (pid 12) crashed (killed by SIGKILL)'), 'the background process (pid 12) crashed (killed by SIGKILL)');
    assert.equal(userFacingHostText('The task host did not answer inspect; restarting it'), 'The background process did not answer inspect; restarting it');
    assert.equal(userFacingHostText('cannot start the task host: ENOENT; task host bundle'), 'cannot start the background process: ENOENT; background process bundle');
  });
});

describe('job errors in the editor\'s words', () => {
  const cli =
    'the vocabularies differ (embedding/LM-head shapes): model.embed_tokens.weight: [576, 64] in /tmp/uxws/chatvec-demo/tiny-cp vs [512, 64] in /tmp/uxws/chatvec-demo/tiny-base; pass --skip-embed to take the input embeddings and LM head from the target unchanged';

  it('names folders, not absolute paths, and the option, not the flag', () => {
    assert.equal(
      uiErrorText(cli),
      'the vocabularies differ (embedding/LM-head shapes): model.embed_tokens.weight: [576, 64] in tiny-cp vs [512, 64] in tiny-base; choose "Skip embeddings" to take the input embeddings and LM head from the target unchanged',
    );
    assert.equal(uiErrorText('relative ‖Δ‖/‖A‖ of x'), 'relative ‖Δ‖/‖A‖ of x', 'a lone slash is not a path');
    assert.equal(uiErrorText('out exists; use --overwrite'), 'out exists; use "Replace"');
  });

  it('recognises the vocabulary mismatch that "Skip embeddings" fixes', () => {
    assert.equal(isVocabularyMismatch(cli), true);
    assert.equal(isVocabularyMismatch('shapes differ: q_proj'), false);
  });
});
