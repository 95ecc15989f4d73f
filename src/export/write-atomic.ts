// The one writer of every output file (models, DAGs, plans, reports, .npy outputs), so that a reader never sees a
// partial one, a failure leaves nothing behind, and no input, device or folder is ever replaced:
// write a temporary file in the same folder (rename is atomic only within one file system), fsync it,
// rename it over the target, then fsync the folder so the rename itself survives a crash.
// DEVELOPERS.md: "no partial output file (write to a temp file, then rename)".

import { randomBytes } from 'node:crypto';
import { constants, unlinkSync, type Stats } from 'node:fs';
import { lstat, open, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { FcmError, invalid } from '../errors.js';

export interface WriteAtomicOptions {
  /** Paths the output must not be (the model it was made from): refused before anything is written. */
  notSameAs?: string | readonly string[];
  /** Option name for error messages ("-o", "--dag"). */
  what?: string;
}

/** The canonical path of `p`, or of its folder plus its name when `p` does not exist yet. */
async function canonical(p: string): Promise<string> {
  const abs = resolve(p);
  try {
    return await realpath(abs);
  } catch {
    try {
      return join(await realpath(dirname(abs)), basename(abs));
    } catch {
      return abs;
    }
  }
}

/** True unless no process `pid` exists (kill(pid, 0) fails with ESRCH); EPERM means it exists. */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Removes temporary files `.<name>.<pid>.<hex>.tmp` of earlier writes to the same target whose process is
 * gone (SIGKILLed or crashed mid-write: it could not clean up). Files of live processes (a concurrent
 * write) and anything not of exactly that pattern and not a regular file are left alone. Best effort:
 * a file that cannot be removed does not stop the write.
 */
export async function removeStaleTemps(dir: string, name: string): Promise<string[]> {
  const prefix = `.${name}.`;
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const f of entries) {
    if (!f.startsWith(prefix)) continue;
    const m = /^(\d{1,10})\.[0-9a-f]+\.tmp$/.exec(f.slice(prefix.length));
    if (!m) continue;
    const pid = Number(m[1]);
    // pid 0 and negative pids address process groups in kill(); never probe them.
    if (pid <= 0 || pid > 2 ** 31 - 1 || pid === process.pid || processAlive(pid)) continue;
    const p = join(dir, f);
    try {
      if (!(await lstat(p)).isFile()) continue;
      await rm(p);
      removed.push(f);
    } catch { /* removed by another writer meanwhile, or not ours to remove */ }
  }
  return removed;
}

/** What an existing non-regular file is, for messages. */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

async function statOrNull(p: string): Promise<Stats | null> {
  try {
    return await stat(p);
  } catch {
    return null;
  }
}

/**
 * Checks that `path` may be written, before any work is done: it must not be one of `notSameAs` (same canonical
 * path, or the same inode: a hard link or a bind mount of an input), and when it exists it must be a regular file.
 * A device, FIFO, socket or folder is refused rather than replaced by a regular file (renaming over /dev/full as
 * root replaces the device node) or written in place (a FIFO without a reader blocks): to see the output on
 * stdout, leave -o out where the command prints it. Throws FcmError (exit 2) naming the path; returns the
 * canonical target.
 */
export async function checkOutputTarget(path: string, opts: WriteAtomicOptions = {}): Promise<string> {
  const what = opts.what ? `${opts.what} ${path}` : path;
  const target = await canonical(path);
  const st = await statOrNull(target);
  const others = opts.notSameAs === undefined ? [] : typeof opts.notSameAs === 'string' ? [opts.notSameAs] : opts.notSameAs;
  for (const o of others) {
    const same = (await canonical(o)) === target || (st !== null && await statOrNull(o).then((so) => so !== null && so.dev === st.dev && so.ino === st.ino));
    if (same) throw invalid(what, `is the input file '${o}'; refusing to overwrite it (choose another output path)`);
  }
  if (st && st.isDirectory()) throw invalid(what, 'is a folder, not a file path');
  if (st && !st.isFile()) throw invalid(what, `is ${kindOf(st)}, not a regular file; refusing to replace or write it (outputs are regular files)`);
  // A missing folder would fail only at the end, after the work: the same error as creating the file would give.
  if (!st) {
    const folder = await statOrNull(dirname(target));
    if (!folder?.isDirectory()) throw invalid(what, `cannot create the output file (${folder ? 'ENOTDIR' : 'ENOENT'})`);
  }
  return target;
}

// Temporary files of writes in flight: removed when the process exits or is ended by SIGINT/SIGTERM/SIGHUP
// mid-write (a SIGKILL cannot be caught: removeStaleTemps cleans up after it on the next write).
const liveTemps = new Set<string>();
const endSignals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function removeLiveTemps(): void {
  for (const t of liveTemps) {
    try { unlinkSync(t); } catch { /* already gone */ }
  }
  liveTemps.clear();
}

function onEndSignal(signal: NodeJS.Signals): void {
  removeLiveTemps();
  untrack();
  // Die of the same signal, as without our handler; a program with handlers of its own decides for itself.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function track(tmp: string): void {
  if (liveTemps.size === 0) {
    process.on('exit', removeLiveTemps);
    for (const s of endSignals) process.on(s, onEndSignal);
  }
  liveTemps.add(tmp);
}

function untrack(tmp?: string): void {
  if (tmp !== undefined) liveTemps.delete(tmp);
  if (liveTemps.size === 0) {
    process.off('exit', removeLiveTemps);
    for (const s of endSignals) process.off(s, onEndSignal);
  }
}

/**
 * Writes `data` to `path` atomically: the one writer of every output file of fcm-opt. checkOutputTarget first
 * (exit 2 naming the path: an input, a folder, a device, a FIFO); then a hidden temporary file
 * `.<name>.<pid>.<hex>.tmp` in the target's folder, written, fsynced, renamed over the target, and the folder
 * fsynced. Any temporary file is removed on every error path, on exit and on SIGINT/SIGTERM/SIGHUP; stale ones of
 * killed earlier writes to `path` first (removeStaleTemps).
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, opts: WriteAtomicOptions = {}): Promise<void> {
  const what = opts.what ? `${opts.what} ${path}` : path;
  const target = await checkOutputTarget(path, opts);
  const dir = dirname(target);
  await removeStaleTemps(dir, basename(target));
  const tmp = join(dir, `.${basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fh;
  // Tracked before it exists: a signal that lands while open() returns must still find it to remove.
  track(tmp);
  try {
    fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  } catch (e) {
    untrack(tmp);
    throw invalid(what, `cannot create the output file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  try {
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    // Checked again just before the rename: the target may have been replaced by a device meanwhile.
    const now = await lstatOrNull(target);
    if (now && !now.isFile()) throw invalid(what, `is ${kindOf(now)}, not a regular file; refusing to replace it`);
    await rename(tmp, target);
  } catch (e) {
    if (fh) await fh.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
    if (e instanceof FcmError) throw e;
    throw invalid(what, `cannot write the output file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  } finally {
    untrack(tmp);
  }
  // Make the rename durable; some file systems refuse fsync on a folder, which is harmless here.
  try {
    const d = await open(dir, constants.O_RDONLY);
    try { await d.sync(); } finally { await d.close(); }
  } catch { /* best effort */ }
}

async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await lstat(p);
  } catch {
    return null;
  }
}

/**
 * Like writeFileAtomic, but the content is produced by `produce` first: when it throws, no file (and no
 * temporary file) exists afterwards and the error propagates unchanged. The target is checked before `produce`
 * runs, so a refused path fails before a long export.
 */
export async function writeAtomicFrom(path: string, produce: () => Uint8Array | string | Promise<Uint8Array | string>, opts: WriteAtomicOptions = {}): Promise<void> {
  await checkOutputTarget(path, opts);
  const data = await produce();
  await writeFileAtomic(path, data, opts);
}
