// The CLI: commander wiring and the one place that turns errors into a line on stderr and an exit code.
// Each subcommand lives in its own file under src/cli/ and exports `register(program)`.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { FcmError, displayLine, invalid } from '../errors.js';
import { commands } from './commands.js';
import { startProgressDisplay } from './progress.js';
import { showNativeDiagnostics } from '../runtime/native-stderr.js';

/** The version in fcm-opt's package.json (found upward from this file: src/cli or dist/src/cli). */
export function packageVersion(): string {
  for (let d = dirname(fileURLToPath(import.meta.url)); ; d = dirname(d)) {
    const p = join(d, 'package.json');
    if (existsSync(p)) {
      const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'fcm-opt' && pkg.version) return pkg.version;
    }
    if (dirname(d) === d) return 'unknown';
  }
}

const modelExtensions = new Set(['.onnx', '.tflite', '.task', '.json', '.ort', '.keras', '.h5']);

/** Edit distance (Levenshtein), for suggesting a command. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

/**
 * `plan` is the default command (`fcm-opt MODEL --hw CFG`), so a mistyped command would be read as a model path.
 * The first operand is taken for a command typo when it is no file and has no model file extension.
 */
function checkCommandName(program: Command, argv: string[]): void {
  const first = argv.slice(2).find((a) => !a.startsWith('-'));
  if (first === undefined || argv.slice(2).indexOf(first) !== 0) return;
  const names = program.commands.map((c) => c.name());
  if (names.includes(first) || first === 'help' || existsSync(first) || modelExtensions.has(extname(first).toLowerCase())) return;
  const near = names.filter((n) => distance(n, first) <= Math.max(1, Math.floor(n.length / 3)));
  throw invalid(`command '${first}'`, `is neither a command (${names.join(', ')}) nor a model file${near.length ? `; did you mean '${near[0]}'?` : ''}`);
}

export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  showNativeDiagnostics(verbose);
  const quiet = argv.includes('--quiet') || argv.includes('-q');
  const program = new Command('fcm-opt')
    .description('Fuse depthwise and pointwise convolutions (FCMs) of compact CNNs and run them on WebGPU')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--verbose', 'print stack traces and progress details')
    .option('-q, --quiet', 'no progress display on stderr')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(displayLines(s)) });
  for (const register of commands) register(program);
  // Commands report a non-error failure (a check over tolerance) through process.exitCode; start clean so
  // that a value left by an earlier caller in the same process (a test runner) is not taken for ours.
  const before = process.exitCode;
  process.exitCode = undefined;
  const progress = quiet ? undefined : startProgressDisplay();
  try {
    checkCommandName(program, argv);
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    progress?.end();
    return reportError(e, verbose);
  } finally {
    progress?.end();
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
