// A fuzz worker process: builds the corpus once, then runs tasks from the parent one at a time and reports
// each outcome. A crash, hang or memory blow-up can only take down this process; the parent restarts it.
import { FcmError } from '../errors.js';
import { materialize } from './cases.js';
import { buildCorpus, projectRoot, type Seed } from './corpus.js';
import { topFrame, type FromWorker, type Outcome, type Task } from './protocol.js';
import { runTarget } from './targets.js';

const send = (m: FromWorker) => process.send!(m);
let current: number | null = null;
const root = projectRoot();

function classify(e: unknown): Outcome {
  if (e instanceof FcmError) return { kind: 'error', exitCode: e.exitCode, message: e.message };
  const err = e instanceof Error ? e : new Error(`non-Error thrown: ${String(e)}`);
  const stack = err.stack ?? '';
  return { kind: 'crash', name: err.name || 'Error', message: err.message.slice(0, 2000), frame: topFrame(stack, root), stack: stack.slice(0, 8000) };
}

// Errors that escape the awaited promise chain (a callback, a forgotten await) are bugs of the current case.
for (const ev of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(ev, (e: unknown) => {
    if (current !== null) send({ type: 'result', id: current, outcome: classify(e), ms: 0 });
    process.exit(70);
  });
}

async function main(): Promise<void> {
  const corpus: Seed[] = await buildCorpus();
  const byName = new Map(corpus.map((s) => [s.name, s]));
  process.on('message', async (task: Task) => {
    current = task.id;
    const t0 = performance.now();
    let bytes: Uint8Array;
    let target;
    try {
      if (task.raw) {
        bytes = Buffer.from(task.raw.b64, 'base64');
        target = task.raw.target;
      } else {
        bytes = materialize(task.fuzzCase!, byName);
        target = task.fuzzCase!.target;
      }
    } catch (e) {
      send({ type: 'result', id: task.id, outcome: { kind: 'skip', message: `materialize: ${(e as Error).message}` }, ms: 0 });
      current = null;
      return;
    }
    if (task.materializeOnly) {
      send({ type: 'result', id: task.id, outcome: { kind: 'skip', message: 'materialized only' }, ms: 0, b64: Buffer.from(bytes).toString('base64') });
      current = null;
      return;
    }
    let outcome: Outcome;
    try {
      await runTarget(target, bytes, { maxMemory: task.maxMemory });
      outcome = { kind: 'ok' };
    } catch (e) {
      outcome = classify(e);
    }
    const b64 = task.wantBytes ? Buffer.from(bytes).toString('base64') : undefined;
    send({ type: 'result', id: task.id, outcome, ms: performance.now() - t0, b64 });
    current = null;
  });
  send({ type: 'ready', corpus: corpus.map((s) => ({ name: s.name, target: s.target, size: s.bytes.length })) });
}

void main();
