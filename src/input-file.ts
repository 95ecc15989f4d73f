// The one gate for every file fcm-opt reads (models, layer DAGs, hardware descriptions, .npy inputs): it must be a
// regular file (a FIFO, a device such as a symlink to /dev/zero, a socket or a folder would block or never end),
// its size is checked against the memory budget before a byte is read (exit 4), and errors such as EACCES become
// a one-line FcmError naming the path (exit 2). Reading goes through the descriptor that was checked, and reads
// exactly the size fstat gave, so a file that is swapped or grows meanwhile cannot bypass the checks.

import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { FcmError, invalid, overLimit } from './errors.js';

export interface InputFileOptions {
  /** Bytes the file may have: the memory budget (--max-memory), or a smaller format limit. Over it: exit 4. */
  maxBytes: number;
  /** What the budget is, for the message: "the memory budget" (--max-memory) by default. */
  limitName?: string;
  /** Name of the file in messages (default: the path). */
  source?: string;
}

/** What a non-regular file is, for messages. */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

const errnoText: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a folder',
  ENOTDIR: 'a component of the path is not a folder',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'the path is too long',
  EIO: 'input/output error',
  ENXIO: 'no such device',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  ENOMEM: 'out of memory',
};

/** An fs error on `source` as FcmError: exit 4 when the process ran out of descriptors or memory, else exit 2. */
export function fileError(source: string, e: unknown, doing = 'cannot read'): FcmError {
  if (e instanceof FcmError) return e;
  const code = (e as NodeJS.ErrnoException)?.code;
  const text = code ? `${code}: ${errnoText[code] ?? (e as Error).message}` : String(e);
  if (code === 'EMFILE' || code === 'ENFILE' || code === 'ENOMEM') return overLimit(source, `${doing} (${text})`);
  return invalid(source, `${doing} (${text})`);
}

function checkStats(st: Stats, source: string, o: InputFileOptions): number {
  if (!st.isFile()) throw invalid(source, `is ${kindOf(st)}, not a regular file`);
  if (st.size > o.maxBytes) {
    const limit = o.limitName ? `${o.limitName} of ${o.maxBytes} bytes` : `the memory budget of ${o.maxBytes} bytes (--max-memory)`;
    throw overLimit(source, `the file has ${st.size} bytes, over ${limit}`);
  }
  return st.size;
}

// O_NONBLOCK: should the file be swapped for a FIFO between stat and open, the open cannot block; it has no
// effect on regular files. O_NOCTTY: a terminal is never made our controlling one.
const openFlags = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

/** One read() call moves at most this much (the kernel caps a read near 2 GiB). */
const chunk = 1 << 30;

function sameFile(a: Stats, b: Stats): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/** Reads `path` through the gate (see the header). */
export async function readInputFile(path: string, o: InputFileOptions): Promise<Uint8Array> {
  const source = o.source ?? path;
  // stat before open: opening some devices has effects of its own (a watchdog starts, a tape rewinds).
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw fileError(source, e);
  }
  const size = checkStats(st, source, o);
  let fh;
  try {
    fh = await open(path, openFlags);
  } catch (e) {
    throw fileError(source, e);
  }
  try {
    const st2 = await fh.stat();
    if (!sameFile(st, st2)) throw invalid(source, 'changed while being opened');
    checkStats(st2, source, o);
    const bytes = new Uint8Array(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await fh.read(bytes, done, Math.min(size - done, chunk), done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === size ? bytes : bytes.subarray(0, done);
  } catch (e) {
    throw fileError(source, e);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** readInputFile for the synchronous loaders (hardware descriptions, layer DAGs). */
export function readInputFileSync(path: string, o: InputFileOptions): Uint8Array {
  const source = o.source ?? path;
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw fileError(source, e);
  }
  const size = checkStats(st, source, o);
  let fd: number;
  try {
    fd = openSync(path, openFlags);
  } catch (e) {
    throw fileError(source, e);
  }
  try {
    const st2 = fstatSync(fd);
    if (!sameFile(st, st2)) throw invalid(source, 'changed while being opened');
    checkStats(st2, source, o);
    const bytes = new Uint8Array(size);
    let done = 0;
    while (done < size) {
      const n = readSync(fd, bytes, done, Math.min(size - done, chunk), done);
      if (n === 0) break;
      done += n;
    }
    return done === size ? bytes : bytes.subarray(0, done);
  } catch (e) {
    throw fileError(source, e);
  } finally {
    closeSync(fd);
  }
}

/**
 * The budget of a file in a format that cannot exceed `formatBytes` (protobuf and flatbuffers address 2 GiB):
 * the smaller of that and `maxMemory`, named for the message.
 */
export function budgetFor(maxMemory: number, formatBytes: number, format: string): Pick<InputFileOptions, 'maxBytes' | 'limitName'> {
  return formatBytes < maxMemory ? { maxBytes: formatBytes, limitName: `the largest ${format} file` } : { maxBytes: maxMemory };
}

/** Largest protobuf (ONNX) or flatbuffer (TFLite) message: 2^31 - 1 bytes. */
export const maxMessageBytes = 2 ** 31 - 1;

/** The file's text (UTF-8), read through the gate. */
export function readInputTextSync(path: string, o: InputFileOptions): string {
  const b = readInputFileSync(path, o);
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(b);
}
