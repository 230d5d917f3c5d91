/**
 * A one-file output (a .gguf) written atomically: the bytes go to a temporary sibling
 * `.NAME.partial-<pid>-<random>`, are flushed, and the file is renamed onto its name only when
 * complete. A crash, a cancel or an error leaves no file under the final name. Where it may go
 * and what it may replace are the rules of outputGuard.ts (file mode), checked again at commit.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ChatVecError } from '../errors';
import { OutputFile, ioError } from './outputFile';
import { checkOutputTarget } from './outputGuard';

export class AtomicOutputFile {
  private done = false;
  private constructor(
    readonly finalPath: string,
    readonly tempPath: string,
    /** Positional writes into the temporary file. */
    readonly file: OutputFile,
    private readonly overwrite: boolean,
  ) {}

  /**
   * Checks the destination and creates the temporary file at its final size.
   * @param size the finished file's size in bytes
   * @throws ChatVecError InvalidArgument or OutputExists (outputGuard.ts, file mode); Io
   */
  static begin(finalPath: string, size: number, opts: { overwrite: boolean; inputs: readonly string[] }): AtomicOutputFile {
    const abs = checkOutputTarget({ out: finalPath, overwrite: opts.overwrite, inputs: opts.inputs, file: true });
    const parent = path.dirname(abs);
    try {
      fs.mkdirSync(parent, { recursive: true });
    } catch (e) {
      throw ioError(parent, 'cannot create the output\'s folder', e);
    }
    const temp = path.join(parent, `.${path.basename(abs)}.partial-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
    return new AtomicOutputFile(abs, temp, OutputFile.create(temp, size), opts.overwrite);
  }

  /**
   * Flushes the temporary file and renames it onto the final name.
   * @throws ChatVecError OutputExists when something appeared there meanwhile (without overwrite)
   *   or is no longer a regular file; Io
   */
  commit(): void {
    if (this.done) throw new ChatVecError('Internal', 'output committed twice');
    this.file.syncAndClose();
    let st: fs.Stats | null = null;
    try {
      st = fs.lstatSync(this.finalPath);
    } catch {
      // Nothing there: the usual case.
    }
    if (st && !this.overwrite) throw new ChatVecError('OutputExists', `${this.finalPath} appeared while the job ran; not replacing it`);
    if (st && !st.isFile()) throw new ChatVecError('OutputExists', `${this.finalPath} changed while the job ran and is no longer a regular file; not replacing it`);
    try {
      fs.renameSync(this.tempPath, this.finalPath);
    } catch (e) {
      throw ioError(this.finalPath, 'cannot move the finished output into place', e);
    }
    this.done = true;
  }

  /** Closes and removes the temporary file; safe after commit or twice. */
  abort(): void {
    if (this.done) return;
    this.done = true;
    this.file.close();
    fs.rmSync(this.tempPath, { force: true });
  }
}
