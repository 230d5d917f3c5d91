// The `chatVector.modelFolders` setting and the discovery it shares with the workspace
// (src/extension/checkpointFiles.ts, free of `vscode`): which configured values become folders, and
// which searched files become checkpoints — a folder with an index, or config.json/chatvector.json
// and weights; loose .safetensors files; nothing under a dot-folder of the searched folder.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { groupCheckpointFiles, modelFolderRoots } from '../../src/extension/checkpointFiles';

const home = path.resolve('/home/user');
const root = path.resolve('/models');
const at = (...p: string[]) => path.join(root, ...p);

describe('chatVector.modelFolders', () => {
  it('keeps absolute paths (normalised, ~ expanded, each once) and says why it leaves the rest out', () => {
    const r = modelFolderRoots([at('llama'), `${at('llama')}${path.sep}`, '~/hf-models', '  ', 'relative/models', 42, path.join(root, 'a', '..', 'b')], home);
    assert.deepEqual(r.roots, [at('llama'), path.join(home, 'hf-models'), at('b')]);
    assert.equal(r.ignored.length, 3, r.ignored.join('\n'));
    assert.match(r.ignored[1]!, /"relative\/models" is not an absolute path/);
    assert.match(r.ignored[2]!, /42 is not a folder path/);
    assert.deepEqual(modelFolderRoots(undefined, home), { roots: [], ignored: [] });
    assert.match(modelFolderRoots('/models', home).ignored[0]!, /must be a list of folders/);
  });
});

describe('checkpoint discovery from file names', () => {
  it('groups files into model folders, chat-vector folders and loose .safetensors files, sorted by path', () => {
    const files = [
      at('zeta', 'config.json'),
      at('zeta', 'model.safetensors'),
      at('sharded', 'model.safetensors.index.json'), // an index alone makes a checkpoint (shards may still be listed)
      at('sharded', 'model-00001-of-00002.safetensors'),
      at('vec', 'chatvector.json'),
      at('vec', 'model.safetensors'),
      at('loose', 'a.safetensors'),
      at('loose', 'b.safetensors'),
      at('config-only', 'config.json'), // no weights: not a checkpoint
    ];
    const got = groupCheckpointFiles(files, root).map((g) => [path.relative(root, g.path), g.kind, g.vector, g.files.length]);
    assert.deepEqual(got, [
      [path.join('loose', 'a.safetensors'), 'file', false, 1],
      [path.join('loose', 'b.safetensors'), 'file', false, 1],
      ['sharded', 'folder', false, 2],
      ['vec', 'folder', true, 2],
      ['zeta', 'folder', false, 2],
    ]);
  });

  it('skips anything under a dot-folder below the searched folder (half-written outputs), but not dot-folders above it', () => {
    const hiddenRoot = path.resolve('/home/user/.cache/models');
    const files = [path.join(hiddenRoot, 'm', 'config.json'), path.join(hiddenRoot, 'm', 'model.safetensors'), path.join(hiddenRoot, '.out.partial-1', 'config.json'), path.join(hiddenRoot, '.out.partial-1', 'model.safetensors')];
    assert.deepEqual(groupCheckpointFiles(files, hiddenRoot).map((g) => g.path), [path.join(hiddenRoot, 'm')]);
  });
});
