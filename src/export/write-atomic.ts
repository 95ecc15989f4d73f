// Writing output files so that a reader never sees a partial one and a failure leaves nothing behind:
// write a temporary file in the same folder (rename is atomic only within one file system), fsync it,
// rename it over the target, then fsync the folder so the rename itself survives a crash.
// DEVELOPERS.md: "no partial output file (write to a temp file, then rename)".

import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { invalid } from '../errors.js';

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

/**
 * Writes `data` to `path` atomically. Throws FcmError (exit 2) naming the path when the folder is missing
 * or not writable, when the path is a folder, or when it is one of `notSameAs`; any temporary file is
 * removed on every error path, and stale ones of killed earlier writes to `path` first (removeStaleTemps).
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, opts: WriteAtomicOptions = {}): Promise<void> {
  const what = opts.what ? `${opts.what} ${path}` : path;
  const target = await canonical(path);
  const others = opts.notSameAs === undefined ? [] : typeof opts.notSameAs === 'string' ? [opts.notSameAs] : opts.notSameAs;
  for (const o of others) {
    if ((await canonical(o)) === target) throw invalid(what, `is the input file '${o}'; refusing to overwrite it (choose another output path)`);
  }
  try {
    if ((await stat(target)).isDirectory()) throw invalid(what, 'is a folder, not a file path');
  } catch (e) {
    if (e instanceof Error && e.name === 'FcmError') throw e;
    // A missing target is the usual case.
  }
  const dir = dirname(target);
  await removeStaleTemps(dir, basename(target));
  const tmp = join(dir, `.${basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fh;
  try {
    fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
  } catch (e) {
    throw invalid(what, `cannot create the output file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  try {
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, target);
  } catch (e) {
    if (fh) await fh.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
    throw invalid(what, `cannot write the output file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  // Make the rename durable; some file systems refuse fsync on a folder, which is harmless here.
  try {
    const d = await open(dir, constants.O_RDONLY);
    try { await d.sync(); } finally { await d.close(); }
  } catch { /* best effort */ }
}

/**
 * Like writeFileAtomic, but the content is produced by `produce` first: when it throws, no file (and no
 * temporary file) exists afterwards and the error propagates unchanged.
 */
export async function writeAtomicFrom(path: string, produce: () => Uint8Array | string | Promise<Uint8Array | string>, opts: WriteAtomicOptions = {}): Promise<void> {
  // Checks that cost nothing come first, so a refused path fails before a long export.
  const target = await canonical(path);
  const others = opts.notSameAs === undefined ? [] : typeof opts.notSameAs === 'string' ? [opts.notSameAs] : opts.notSameAs;
  for (const o of others) {
    if ((await canonical(o)) === target) {
      throw invalid(opts.what ? `${opts.what} ${path}` : path, `is the input file '${o}'; refusing to overwrite it (choose another output path)`);
    }
  }
  const data = await produce();
  await writeFileAtomic(path, data, opts);
}
