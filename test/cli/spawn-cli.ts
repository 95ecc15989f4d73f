// Runs `node bin/fcm-opt.js ...` in its own process (the built dist/, as npm's `fcm-opt` bin runs it), for tests of
// the CLI as a user meets it: exit code, stdout, stderr.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const bin = resolve('bin/fcm-opt.js');

export interface CliResult { code: number | null; out: string; err: string }

export function fcmOpt(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, XDG_RUNTIME_DIR: '/tmp', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { err += s; });
    child.on('error', fail);
    child.on('close', (code) => done({ code, out, err }));
  });
}

/** stderr without the native diagnostics Dawn and the Vulkan loader print ("Warning: ..." lines). */
export const ownLines = (err: string) => err.split('\n').filter((l) => l.trim() !== '' && !/^Warning: /.test(l) && !/^\s+at \w+ \(\S+\.(?:cpp|cc|h):\d+\)$/.test(l));
