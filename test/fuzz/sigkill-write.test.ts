// Atomic output: the output is written to a temporary file in the same folder, fsynced and renamed. A
// process SIGKILLed while it writes a large model leaves the previous OUT.onnx intact, and the next run
// leaves no temporary file behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const ts = self.endsWith('.ts');
// test/fuzz/x.test.(ts|js) -> src/fuzz/atomic-write-child.(ts|js), in the source tree or in dist/.
const child = join(self, '..', '..', '..', 'src', 'fuzz', `atomic-write-child.${ts ? 'ts' : 'js'}`);
const execArgv = ts ? ['--import', 'tsx'] : [];

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const temps = (dir: string) => readdirSync(dir).filter((f) => f !== 'OUT.onnx');

function runChild(out: string, mib: number, fill: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...execArgv, child, out, String(mib), String(fill)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(code) : reject(new Error(`child exited ${code}: ${err}`))));
  });
}

/** Starts a writer of `mib` MiB and SIGKILLs it as soon as its temporary file has data. */
function killMidWrite(out: string, dir: string, mib: number): Promise<{ killedWhileWriting: boolean; tempSeen: string | null }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...execArgv, child, out, String(mib), '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let tempSeen: string | null = null;
    let done = false;
    const poll = setInterval(() => {
      if (done) return;
      for (const f of temps(dir)) {
        try {
          if (statSync(join(dir, f)).size > 0) {
            tempSeen = f;
            p.kill('SIGKILL');
            clearInterval(poll);
            return;
          }
        } catch { /* renamed or removed between readdir and stat */ }
      }
    }, 1);
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      done = true;
      clearInterval(poll);
      resolve({ killedWhileWriting: signal === 'SIGKILL' && code === null, tempSeen });
    });
  });
}

/** A folder holding the previous OUT.onnx and the temporary file of a writer SIGKILLed mid-write. */
async function killedWriter(t: { after: (fn: () => void) => void }): Promise<{ dir: string; out: string; before: string; tempSeen: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-sigkill-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'OUT.onnx');
  await runChild(out, 1, 1);
  const before = sha(out);
  assert.deepEqual(temps(dir), [], 'a completed write leaves only OUT.onnx');
  // Kill mid-write; retry with a larger model if the writer was too quick to catch.
  let r = { killedWhileWriting: false, tempSeen: null as string | null };
  for (const mib of [256, 512]) {
    r = await killMidWrite(out, dir, mib);
    if (r.killedWhileWriting && r.tempSeen) break;
  }
  assert.ok(r.killedWhileWriting && r.tempSeen, 'the writer was killed while its temporary file existed');
  return { dir, out, before, tempSeen: r.tempSeen! };
}

test('SIGKILL while writing a large model leaves the previous OUT.onnx intact', { timeout: 120_000 }, async (t) => {
  const { out, before, tempSeen } = await killedWriter(t);
  assert.equal(sha(out), before, 'OUT.onnx is byte-for-byte the previous model');
  assert.match(tempSeen, /^\.OUT\.onnx\..*\.tmp$/, 'the temporary file lives in the same folder, hidden, named after the output');
  // The next run still succeeds and replaces OUT.onnx.
  await runChild(out, 1, 3);
  assert.notEqual(sha(out), before, 'the next run replaced OUT.onnx');
});

// writeFileAtomic removes `.<name>.<pid>.<hex>.tmp` files of writers that are no longer alive (fuzz finding
// F, RELIABILITY.md).
test('after a SIGKILLed write, the next run leaves no temporary file', { timeout: 120_000 }, async (t) => {
  const { dir, out, tempSeen } = await killedWriter(t);
  assert.deepEqual(temps(dir), [tempSeen], 'the killed writer left its temporary file');
  await runChild(out, 1, 3);
  assert.deepEqual(temps(dir), [], `temporary files left after the next run: ${temps(dir).join(', ')}`);
  assert.ok(readFileSync(out).length > 2 ** 20, 'the next run wrote the whole 1 MiB model');
});
