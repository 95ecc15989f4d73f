// Runs the CLI's main() in this process with stdout and stderr captured, for tests of commands and exit codes.
import { main } from '../../src/cli/main.js';

export async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const stdoutWrite = process.stdout.write.bind(process.stdout);
  const stderrWrite = process.stderr.write.bind(process.stderr);
  // The CLI writes strings; the test runner's own reports (binary, on stdout) must pass through.
  process.stdout.write = ((s: string | Uint8Array, ...rest: never[]) => {
    if (typeof s !== 'string') return stdoutWrite(s, ...rest);
    out += s;
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array, ...rest: never[]) => {
    if (typeof s !== 'string') return stderrWrite(s, ...rest);
    err += s;
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await main(['node', 'fcm-opt', ...args]);
    return { code, out, err };
  } finally {
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
  }
}
