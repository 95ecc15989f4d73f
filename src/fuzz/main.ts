// `npm run fuzz -- --seconds N --seed S [--jobs J] [--case I,...] [--save DIR] [--no-minimize]
//  [--max-memory BYTES] [--timeout SECONDS]`: runs the fuzzer and prints executions, distinct crashes
// (error type + top frame) and timing. Exit 0 when no crash was found, 1 otherwise, 2 on bad arguments.
import { formatReport, runFuzz, type FuzzOptions } from './engine.js';
import { parseFuzzArgs } from './main-args.js';

async function main(): Promise<number> {
  let opts: FuzzOptions;
  try {
    opts = parseFuzzArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`fuzz: ${(e as Error).message}\n`);
    return 2;
  }
  const started = new Date().toISOString();
  const report = await runFuzz({ ...opts, log: (l) => process.stdout.write(`${l}\n`) });
  process.stdout.write(`fuzz: started ${started}, node ${process.version}\n${formatReport(report)}\n`);
  return report.crashes.length === 0 ? 0 : 1;
}

main().then((code) => { process.exitCode = code; }, (e) => { process.stderr.write(`fuzz: ${(e as Error).stack}\n`); process.exitCode = 70; });
