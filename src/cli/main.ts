// The CLI: commander wiring and the one place that turns errors into a line on stderr and an exit code.
// Each subcommand lives in its own file under src/cli/ and exports `register(program)`.
import { Command, CommanderError } from 'commander';
import { FcmError, displayLine } from '../errors.js';
import { commands } from './commands.js';
import { showNativeDiagnostics } from '../runtime/native-stderr.js';

export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  showNativeDiagnostics(verbose);
  const program = new Command('fcm-opt')
    .description('Fuse depthwise and pointwise convolutions (FCMs) of compact CNNs and run them on WebGPU')
    .option('--verbose', 'print stack traces and progress details')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(displayLines(s)) });
  for (const register of commands) register(program);
  // Commands report a non-error failure (a check over tolerance) through process.exitCode; start clean so
  // that a value left by an earlier caller in the same process (a test runner) is not taken for ours.
  const before = process.exitCode;
  process.exitCode = undefined;
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    return reportError(e, verbose);
  } finally {
    process.exitCode = before;
  }
}

/** Text of several lines (commander's messages) shown line by line through displayLine. */
export function displayLines(s: string): string {
  const end = s.endsWith('\n') ? '\n' : '';
  return s.slice(0, s.length - end.length).split('\n').map(displayLine).join('\n') + end;
}

/**
 * Turns an error into one stderr line and an exit code: FcmError -> its code (1-5), anything else -> 70. Messages
 * go through displayLine (src/errors.ts): names from the input are escaped and cut, never printed raw.
 */
export function reportError(e: unknown, verbose: boolean): number {
  if (e instanceof CommanderError) {
    // --help and --version end through here too, with exit code 0.
    return e.exitCode === 0 ? 0 : 2;
  }
  if (e instanceof FcmError) {
    process.stderr.write(`fcm-opt: ${displayLine(e.message)}\n`);
    if (verbose && e.stack) process.stderr.write(`${displayLines(e.stack)}\n`);
    return e.exitCode;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  process.stderr.write(`fcm-opt: internal error: ${displayLine(err.message)}${verbose ? '' : ' (run with --verbose for details)'}\n`);
  if (verbose && err.stack) process.stderr.write(`${displayLines(err.stack)}\n`);
  return 70;
}
