/**
 * What a job reads and where it writes, checked twice: before any computing, the output path against the inputs (the
 * rules of io/outputGuard.ts: an output never replaces, contains or lies inside an input), and
 * before the output is committed, every input shard against its snapshot from the start (a model
 * rewritten while the job ran must fail the job, not give a silently mixed output).
 */
import { ChatVecError } from '../errors';
import { type FileSnapshot, changedFiles, snapshotFiles } from '../io/fileSnapshot';
import { checkOutputTarget } from '../io/outputGuard';

/** A model the job reads: its folder or file, and the shard files it reads data from (a Checkpoint is one). */
export interface InputModel {
  readonly path: string;
  readonly shards: readonly { readonly path: string }[];
}

export class JobInputs {
  private constructor(
    /** The output folder as given, checked against the rules. */
    readonly out: string,
    /** Whether an earlier output there may be replaced. */
    readonly overwrite: boolean,
    /** Every input path: checkpoint folders or files, their shard files, other files. */
    readonly paths: readonly string[],
    private readonly snapshot: readonly FileSnapshot[],
  ) {}

  /**
   * Checks `out` against the output-path rules with these inputs and snapshots the shard files.
   * @param checkpoints the opened input checkpoints (headers read), or models and their shard files
   * @param files other inputs: recipe files, tokenizer sources
   * @param file the output is one file, not a folder (outputGuard.ts, file mode)
   * @throws ChatVecError InvalidArgument or OutputExists (see checkOutputTarget); Io when a shard vanished
   */
  static check(out: string, overwrite: boolean, checkpoints: readonly InputModel[], files: readonly string[] = [], file = false): JobInputs {
    const shardPaths = [...new Set(checkpoints.flatMap((c) => c.shards.map((s) => s.path)))];
    const paths = [...new Set([...checkpoints.map((c) => c.path), ...shardPaths, ...files])];
    checkOutputTarget({ out, overwrite, inputs: paths, file });
    let snapshot: FileSnapshot[];
    try {
      snapshot = snapshotFiles(shardPaths);
    } catch (e) {
      throw new ChatVecError('Io', `an input file vanished after it was opened (${(e as Error).message})`);
    }
    return new JobInputs(out, overwrite, paths, snapshot);
  }

  /**
   * @throws ChatVecError Io naming the first changed input and how many changed, when any shard
   *   file changed (size, modification time or inode) since {@link JobInputs.check}
   */
  assertUnchanged(): void {
    const changed = changedFiles(this.snapshot);
    if (!changed.length) return;
    const first = changed[0]!;
    const more = changed.length > 1 ? ` (and ${changed.length - 1} more input file${changed.length > 2 ? 's' : ''})` : '';
    throw new ChatVecError('Io', `${first.path}: an input changed while the job ran (${first.what})${more}; the output would mix old and new data and was not written`);
  }
}
