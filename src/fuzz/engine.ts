// The fuzz engine: a pool of worker processes (src/fuzz/worker.ts) runs generated cases with a per-case
// time limit (default 10 s) and a memory limit (RSS polled from /proc; V8 heap capped with
// --max-old-space-size); outcomes other than success or FcmError are crashes, told apart by error type +
// top frame, minimized (delta debugging on the mutation list, then on bytes) and optionally saved.
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCase, type FuzzCase, type Mutation } from './cases.js';
import { targetExt, type Seed, type Target } from './corpus.js';
import { crashSignature, type FromWorker, type Outcome, type Task } from './protocol.js';

export interface FuzzOptions {
  seconds: number;
  seed: number;
  /** Worker processes (default: CPU count - 1, at least 1, at most 8). */
  jobs?: number;
  /** Per-case limit (default 10 s). */
  timeoutMs?: number;
  /** ImportOptions.maxMemory given to the loaders (default 1 GiB). */
  maxMemory?: number;
  /** A worker whose RSS passes this is killed and the case is a memory bug (default maxMemory + 1 GiB). */
  rssLimitBytes?: number;
  minimize?: boolean;
  /** Folder for minimized crashing inputs (e.g. test/regressions/data); none when undefined. */
  saveDir?: string;
  /** Run only these case indices (replay). */
  cases?: number[];
  log?: (line: string) => void;
}

export interface CrashReport {
  signature: string;
  outcome: Outcome;
  target: Target;
  fuzzCase: FuzzCase;
  /** The minimized mutation list. */
  minimized: Mutation[];
  bytes: number;
  savedAs?: string;
  count: number;
}

export interface FuzzReport {
  seed: number;
  seconds: number;
  jobs: number;
  executions: number;
  byTarget: Record<string, number>;
  ok: number;
  fcmErrors: Record<string, number>;
  skipped: number;
  crashes: CrashReport[];
  elapsedMs: number;
  minimizeMs: number;
  slowestMs: number;
  /** Index of the slowest case (replay it with --case). */
  slowestCase: number;
}

const GiB = 1024 ** 3;

function workerEntry(): { file: string; execArgv: string[] } {
  const self = fileURLToPath(import.meta.url);
  const ts = self.endsWith('.ts');
  const file = join(self, '..', ts ? 'worker.ts' : 'worker.js');
  return { file, execArgv: ts ? ['--import', 'tsx'] : ['--enable-source-maps'] };
}

function rssOf(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * Nanoseconds the process's main thread has spent runnable but waiting for a CPU (/proc/PID/schedstat's second
 * field), or null where that is not readable (not Linux).
 */
function runQueueWaitNs(pid: number): number | null {
  try {
    const f = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/);
    const v = Number(f[1]);
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

/** One worker process; restarted after a crash, hang or memory kill. */
class Worker {
  private child: ChildProcess | null = null;
  private ready: Promise<void> | null = null;
  private nextId = 1;
  private stderrTail = '';
  corpus: { name: string; target: Target; size: number }[] = [];

  constructor(private readonly heapMb: number, private readonly timeoutMs: number, private readonly rssLimit: number) {}

  private start(): Promise<void> {
    const { file, execArgv } = workerEntry();
    const child = fork(file, [], { execArgv: [...execArgv, `--max-old-space-size=${this.heapMb}`], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.child = child;
    this.stderrTail = '';
    child.stderr!.on('data', (d: Buffer) => { this.stderrTail = (this.stderrTail + d.toString()).slice(-4000); });
    return new Promise((resolve, reject) => {
      const onMsg = (m: FromWorker) => {
        if (m.type === 'ready') { this.corpus = m.corpus; child.off('message', onMsg); resolve(); }
      };
      child.on('message', onMsg);
      child.once('exit', (code) => reject(new Error(`fuzz worker exited while starting (code ${code}): ${this.stderrTail}`)));
    });
  }

  /** Starts the process (builds the corpus) if it is not running. */
  async init(): Promise<void> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) this.ready = this.start();
    await this.ready;
  }

  async run(task: Omit<Task, 'id'>): Promise<{ outcome: Outcome; ms: number; b64?: string }> {
    await this.init();
    const child = this.child!;
    const id = this.nextId++;
    const t0 = performance.now();
    return new Promise((resolve) => {
      let done = false;
      const finish = (r: { outcome: Outcome; ms: number; b64?: string }, kill: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearInterval(poll);
        child.off('message', onMsg);
        child.off('exit', onExit);
        if (kill) { child.kill('SIGKILL'); this.child = null; }
        resolve(r);
      };
      const onMsg = (m: FromWorker) => {
        if (m.type === 'result' && m.id === id) finish({ outcome: m.outcome, ms: m.ms, b64: m.b64 }, false);
      };
      const onExit = (code: number | null, signal: string | null) => {
        this.child = null;
        const oom = /heap out of memory|Allocation failed|Array buffer allocation failed/i.test(this.stderrTail);
        const outcome: Outcome = oom
          ? { kind: 'memory', detail: `V8 heap limit (${this.heapMb} MB): ${this.stderrTail.slice(-300)}` }
          : { kind: 'crash', name: `ProcessExit(${signal ?? code})`, message: this.stderrTail.slice(-1000), frame: '<process>', stack: this.stderrTail };
        finish({ outcome, ms: performance.now() - t0 }, false);
      };
      // The per-case limit counts the time the case had: wall time less the time the worker waited for a CPU, so
      // that other processes on a loaded machine do not turn a slow case into a hang. A loop that spins and one
      // that blocks both count in full. Without /proc, wall time.
      const wait0 = child.pid ? runQueueWaitNs(child.pid) : null;
      const hang = () => finish({ outcome: { kind: 'hang', ms: this.timeoutMs }, ms: this.timeoutMs }, true);
      let timer = setTimeout(hang, this.timeoutMs);
      const poll = setInterval(() => {
        const waited = wait0 !== null && child.pid ? runQueueWaitNs(child.pid) : null;
        if (waited !== null) {
          // Re-arm the limit for the time still left to the case.
          const left = this.timeoutMs - (performance.now() - t0 - (waited - wait0!) / 1e6);
          clearTimeout(timer);
          if (left <= 0) { hang(); return; }
          timer = setTimeout(hang, left);
        }
        const rss = child.pid ? rssOf(child.pid) : null;
        if (rss !== null && rss > this.rssLimit) {
          finish({ outcome: { kind: 'memory', detail: `RSS ${Math.round(rss / 2 ** 20)} MiB over the limit of ${Math.round(this.rssLimit / 2 ** 20)} MiB` }, ms: performance.now() - t0 }, true);
        }
      }, 100);
      child.on('message', onMsg);
      child.once('exit', onExit);
      child.send({ ...task, id });
    });
  }

  stop(): void {
    if (this.child) { this.child.kill('SIGKILL'); this.child = null; }
  }
}

/** Runs raw inputs in isolated workers (regression tests): one outcome per input. */
export async function runIsolated(inputs: { target: Target; bytes: Uint8Array }[], opts: { timeoutMs?: number; maxMemory?: number } = {}): Promise<Outcome[]> {
  const maxMemory = opts.maxMemory ?? GiB;
  const w = new Worker(Math.round((maxMemory + GiB) / 2 ** 20), opts.timeoutMs ?? 10_000, maxMemory + GiB);
  try {
    const out: Outcome[] = [];
    for (const i of inputs) out.push((await w.run({ raw: { target: i.target, b64: Buffer.from(i.bytes).toString('base64') }, maxMemory })).outcome);
    return out;
  } finally {
    w.stop();
  }
}

const isBug = (o: Outcome) => o.kind === 'crash' || o.kind === 'hang' || o.kind === 'memory';

/** Classic ddmin (Zeller): a smallest-by-removal subset of `items` that still fails. */
export async function ddmin<T>(items: T[], fails: (subset: T[]) => Promise<boolean>, budget: { runs: number; deadline: number }): Promise<T[]> {
  let cur = items;
  let n = 2;
  while (cur.length >= 2 && budget.runs > 0 && performance.now() < budget.deadline) {
    const size = Math.ceil(cur.length / n);
    let reduced = false;
    for (let i = 0; i < cur.length && budget.runs > 0 && performance.now() < budget.deadline; i += size) {
      const complement = [...cur.slice(0, i), ...cur.slice(i + size)];
      budget.runs--;
      if (complement.length > 0 && (await fails(complement))) {
        cur = complement;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= cur.length) break;
      n = Math.min(cur.length, n * 2);
    }
  }
  return cur;
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const log = opts.log ?? (() => undefined);
  const jobs = opts.jobs ?? Math.max(1, Math.min(8, cpus().length - 1));
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const maxMemory = opts.maxMemory ?? GiB;
  const rssLimit = opts.rssLimitBytes ?? maxMemory + GiB;
  const heapMb = Math.round(rssLimit / 2 ** 20);
  const workers = Array.from({ length: jobs }, () => new Worker(heapMb, timeoutMs, rssLimit));
  const report: FuzzReport = {
    seed: opts.seed, seconds: opts.seconds, jobs, executions: 0, byTarget: {}, ok: 0, fcmErrors: {}, skipped: 0,
    crashes: [], elapsedMs: 0, minimizeMs: 0, slowestMs: 0, slowestCase: -1,
  };
  const t0 = performance.now();
  try {
    // The corpus as the workers built it (generation needs only names and targets).
    await workers[0].init();
    const corpus = workers[0].corpus.map((s) => ({ name: s.name, target: s.target, bytes: new Uint8Array() })) as Seed[];
    log(`fuzz: seed ${opts.seed}, ${opts.seconds} s, ${jobs} workers, ${corpus.length} corpus files, ${timeoutMs / 1000} s per case, memory budget ${maxMemory} B (RSS limit ${rssLimit} B)`);
    const crashes = new Map<string, CrashReport>();
    const deadline = t0 + opts.seconds * 1000;
    let next = 0;
    const replay = opts.cases;
    const take = (): number | null => {
      if (replay) return next < replay.length ? replay[next++] : null;
      return performance.now() < deadline ? next++ : null;
    };
    let lastLog = performance.now();
    await Promise.all(workers.map(async (w) => {
      for (let index = take(); index !== null; index = take()) {
        const c = generateCase(opts.seed, index, corpus);
        const { outcome, ms } = await w.run({ fuzzCase: c, maxMemory });
        report.executions++;
        report.byTarget[c.target] = (report.byTarget[c.target] ?? 0) + 1;
        if (ms > report.slowestMs) { report.slowestMs = ms; report.slowestCase = index; }
        if (outcome.kind === 'ok') report.ok++;
        else if (outcome.kind === 'error') report.fcmErrors[`exit ${outcome.exitCode}`] = (report.fcmErrors[`exit ${outcome.exitCode}`] ?? 0) + 1;
        else if (outcome.kind === 'skip') report.skipped++;
        else {
          const sig = outcome.kind === 'crash' ? crashSignature(outcome) : `${crashSignature(outcome)} in ${c.target}`;
          const known = crashes.get(sig);
          if (known) known.count++;
          else {
            crashes.set(sig, { signature: sig, outcome, target: c.target, fuzzCase: c, minimized: c.mutations, bytes: 0, count: 1 });
            log(`fuzz: NEW crash #${crashes.size} in case ${index} (${c.target}, ${c.seed}): ${sig}${outcome.kind === 'crash' ? `: ${outcome.message.split('\n')[0]}` : ''}`);
          }
        }
        if (performance.now() - lastLog > 10_000) {
          lastLog = performance.now();
          log(`fuzz: ${report.executions} executions, ${crashes.size} distinct crashes, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
        }
      }
    }));
    report.elapsedMs = performance.now() - t0;

    // Minimize each distinct crash: first the mutation list, then the bytes (bounded).
    const m0 = performance.now();
    const w = workers[0];
    for (const cr of crashes.values()) {
      const sig = cr.signature;
      const budget = { runs: 60, deadline: performance.now() + 20_000 };
      const same = async (t: Omit<Task, 'id' | 'maxMemory'>) => {
        const { outcome } = await w.run({ ...t, maxMemory });
        return isBug(outcome) && (outcome.kind === 'crash' ? crashSignature(outcome) : `${crashSignature(outcome)} in ${cr.target}`) === sig;
      };
      if (opts.minimize !== false) {
        cr.minimized = await ddmin(cr.fuzzCase.mutations, (ms) => same({ fuzzCase: { ...cr.fuzzCase, mutations: ms } }), budget);
      }
      const got = await w.run({ fuzzCase: { ...cr.fuzzCase, mutations: cr.minimized }, wantBytes: true, materializeOnly: true, maxMemory });
      let bytes: Uint8Array = Buffer.from(got.b64 ?? '', 'base64');
      if (opts.minimize !== false && bytes.length <= 256 * 1024 && cr.outcome.kind === 'crash') {
        // Bytes: ddmin over 64 chunks, then drop the tail while the crash stays.
        const chunk = Math.max(1, Math.ceil(bytes.length / 64));
        const chunks = Array.from({ length: Math.ceil(bytes.length / chunk) }, (_, i) => bytes.subarray(i * chunk, (i + 1) * chunk));
        const join = (cs: Uint8Array[]) => Buffer.concat(cs);
        const raw = (b: Uint8Array) => ({ raw: { target: cr.target, b64: Buffer.from(b).toString('base64') } });
        const kept = await ddmin(chunks, (cs) => same(raw(join(cs))), { runs: 60, deadline: performance.now() + 20_000 });
        bytes = join(kept);
      }
      cr.bytes = bytes.length;
      if (opts.saveDir) {
        mkdirSync(opts.saveDir, { recursive: true });
        const hash = createHash('sha256').update(sig).digest('hex').slice(0, 10);
        const file = join(opts.saveDir, `${cr.target}-${hash}${targetExt[cr.target]}`);
        writeFileSync(file, bytes);
        writeFileSync(`${file}.crash.txt`, [
          `signature: ${sig}`,
          `found by: npm run fuzz -- --seed ${opts.seed} --case ${cr.fuzzCase.index}`,
          `seed input: ${cr.fuzzCase.seed}`,
          `mutations (minimized): ${JSON.stringify(cr.minimized)}`,
          cr.outcome.kind === 'crash' ? `stack:\n${cr.outcome.stack}` : `outcome: ${JSON.stringify(cr.outcome)}`,
          '',
        ].join('\n'));
        cr.savedAs = file;
      }
    }
    report.minimizeMs = performance.now() - m0;
    report.crashes = [...crashes.values()];
    return report;
  } finally {
    for (const w of workers) w.stop();
  }
}

export function formatReport(r: FuzzReport): string {
  const lines = [
    `fuzz: seed ${r.seed}: ${r.executions} executions in ${(r.elapsedMs / 1000).toFixed(1)} s (${(r.executions / (r.elapsedMs / 1000)).toFixed(1)}/s) on ${r.jobs} workers; slowest case ${(r.slowestMs / 1000).toFixed(2)} s (case ${r.slowestCase})`,
    `fuzz: by target: ${Object.entries(r.byTarget).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `fuzz: outcomes: ok ${r.ok}, FcmError ${Object.entries(r.fcmErrors).map(([k, v]) => `${k}: ${v}`).join(', ') || '0'}, skipped ${r.skipped}`,
    `fuzz: distinct crashes: ${r.crashes.length}${r.crashes.length ? ` (minimized in ${(r.minimizeMs / 1000).toFixed(1)} s)` : ''}`,
  ];
  for (const c of r.crashes) {
    lines.push(`  - ${c.signature} [${c.target}, ${c.count}x, first case ${c.fuzzCase.index}, ${c.minimized.length} mutation(s), ${c.bytes} bytes${c.savedAs ? `, saved ${c.savedAs}` : ''}]`);
    if (c.outcome.kind === 'crash') lines.push(`      ${c.outcome.message.split('\n')[0].slice(0, 300)}`);
  }
  return lines.join('\n');
}
