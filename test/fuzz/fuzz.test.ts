// The fuzzer (src/fuzz): its parts are deterministic and do what they say, and a CI run of 60 s with a
// fixed seed (FCM_FUZZ_SECONDS overrides the duration) finds no crash, hang or memory blow-up.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateCase, materialize } from '../../src/fuzz/cases.js';
import { buildCorpus, targets } from '../../src/fuzz/corpus.js';
import { mutateZip, zipSites } from '../../src/fuzz/mutate-zip.js';
import { ddmin, formatReport, runFuzz, runIsolated } from '../../src/fuzz/engine.js';
import { parseFuzzArgs } from '../../src/fuzz/main-args.js';
import { tfliteSites } from '../../src/fuzz/mutate-tflite.js';
import { crashSignature, topFrame } from '../../src/fuzz/protocol.js';

const ciSeed = 20240429;

test('cases are a pure function of (seed, index): same bytes in every process', async () => {
  const corpus = await buildCorpus();
  assert.deepEqual(new Set(corpus.map((s) => s.target)), new Set(targets), 'every target has seed inputs');
  const byName = new Map(corpus.map((s) => [s.name, s]));
  let changed = 0;
  for (let i = 0; i < 60; i++) {
    const a = generateCase(7, i, corpus), b = generateCase(7, i, corpus);
    assert.deepEqual(a, b);
    const x = materialize(a, byName), y = materialize(b, byName);
    assert.deepEqual(Buffer.from(x), Buffer.from(y), `case ${i} materializes identically`);
    if (!Buffer.from(x).equals(Buffer.from(byName.get(a.seed)!.bytes))) changed++;
  }
  // Mutations change the input in the large majority of cases (a few no-ops are fine).
  assert.ok(changed >= 50, `only ${changed} of 60 cases differ from their seed`);
  assert.notDeepEqual(generateCase(7, 0, corpus), generateCase(8, 0, corpus));
});

test('the TFLite walker finds the fields the importer trusts', async () => {
  const corpus = await buildCorpus();
  const labels = new Set(tfliteSites(corpus.find((s) => s.target === 'tflite')!.bytes).map((s) => s.label.replace(/\[\d+\]/g, '[]')));
  for (const l of ['Tensor.buffer', 'Operator.opcode_index', 'Operator.inputs[]', 'Tensor.shape[]', 'Conv2DOptions.stride_w', 'DepthwiseConv2DOptions.depth_multiplier', 'len:Tensor.shape', 'off:Model.buffers']) {
    assert.ok(labels.has(l), `no site ${l}`);
  }
});

test('the zip walker finds the fields the bundle reader trusts: the directory record, and each entry in both headers', async () => {
  const corpus = await buildCorpus();
  const two = corpus.find((s) => s.name === 'bundle:two_models')!.bytes;
  const { fields, names } = zipSites(two);
  // 4 of the end record, 7 per central header, 5 per local header; three entries.
  assert.equal(fields.length, 4 + 3 * (7 + 5));
  assert.deepEqual(names.map((n) => new TextDecoder().decode(two.subarray(n.at, n.at + n.length))), ['a.tflite', 'b.tflite', 'labels.txt']);
  // Every mutation keeps the length; most change a byte.
  let changed = 0;
  for (let s = 0; s < 40; s++) {
    const m = mutateZip(two, s % 2 ? 'name' : 'field', s);
    assert.equal(m.length, two.length);
    if (!Buffer.from(m).equals(Buffer.from(two))) changed++;
  }
  assert.ok(changed >= 30, `only ${changed} of 40 zip mutations changed the archive`);
});

test('the TF.js graph seed loads and runs: its fused plan computes what its unfused one does', async () => {
  const { mkdtempSync: mk, writeFileSync: wr, rmSync: rm } = await import('node:fs');
  const { smallGraphModel } = await import('../../fixtures/tfjs-graph-builder.js');
  const { createSession } = await import('../../src/pipeline/session.js');
  const { loadHw } = await import('../../src/planner/hw.js');
  const dir = mk(join(tmpdir(), 'fcm-fuzz-tfjs-seed-'));
  try {
    const m = smallGraphModel();
    wr(join(dir, 'model.json'), m.json);
    wr(join(dir, 'group1-shard1of1.bin'), m.shard);
    const x = Float32Array.from({ length: 3 * 8 * 8 }, (_, i) => Math.cos(i));
    const outs = [];
    for (const plan of ['unfused', 'auto'] as const) {
      const s = await createSession(join(dir, 'model.json'), { hw: loadHw('rtxa4000'), plan });
      outs.push(await s.run({ image: x }));
      s.dispose();
    }
    for (const k of Object.keys(outs[0])) {
      const data = (o: unknown) => ((o as { data?: Float32Array }).data ?? o) as Float32Array;
      const a = data(outs[0][k]), b = data(outs[1][k]);
      assert.ok(a.length > 0);
      for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * Math.max(1, Math.abs(a[i])), `${k}[${i}]`);
    }
  } finally {
    rm(dir, { recursive: true, force: true });
  }
});

test('ddmin keeps a smallest failing subset', async () => {
  const failing = (s: number[]) => Promise.resolve(s.includes(3) && s.includes(7));
  assert.deepEqual(await ddmin([1, 2, 3, 4, 5, 6, 7, 8], failing, { runs: 100, deadline: performance.now() + 5000 }), [3, 7]);
});

test('crash signatures: error type + top frame relative to the project', () => {
  const stack = 'TypeError: x is undefined\n    at foo (/repo/src/graph/shape.ts:120:7)\n    at bar (/repo/src/x.ts:1:1)';
  assert.equal(topFrame(stack, '/repo'), 'src/graph/shape.ts:120');
  assert.equal(crashSignature({ kind: 'crash', name: 'TypeError', message: '', frame: 'src/graph/shape.ts:120', stack }), 'TypeError at src/graph/shape.ts:120');
  assert.match(crashSignature({ kind: 'hang', ms: 10_000 }), /hang/);
});

test('arguments: --seconds N --seed S and friends', () => {
  assert.deepEqual(parseFuzzArgs(['--seconds', '5', '--seed', '3', '--jobs', '2', '--case', '4,9', '--max-memory', '512M', '--no-minimize']),
    { seconds: 5, seed: 3, jobs: 2, cases: [4, 9], maxMemory: 512 * 2 ** 20, minimize: false });
  assert.throws(() => parseFuzzArgs(['--seconds', '0']));
  assert.throws(() => parseFuzzArgs(['--bogus']));
});

test('the isolated runner tells FcmErrors from successes', async () => {
  const corpus = await buildCorpus();
  const cfg = corpus.find((s) => s.target === 'cfg')!;
  const [ok, bad] = await runIsolated([{ target: 'cfg', bytes: cfg.bytes }, { target: 'onnx', bytes: new Uint8Array([0xff, 0xff, 0xff]) }]);
  assert.deepEqual(ok, { kind: 'ok' });
  assert.equal(bad.kind, 'error');
});

test(`fuzz for FCM_FUZZ_SECONDS (default 60) s with seed ${ciSeed}: no crash`, { timeout: 900_000 }, async (t) => {
  const seconds = Number(process.env.FCM_FUZZ_SECONDS ?? 60);
  const saveDir = mkdtempSync(join(tmpdir(), 'fcm-fuzz-ci-'));
  t.after(() => rmSync(saveDir, { recursive: true, force: true }));
  const report = await runFuzz({ seconds, seed: ciSeed, jobs: 2, saveDir, log: (l) => t.diagnostic(l) });
  for (const line of formatReport(report).split('\n')) t.diagnostic(line);
  assert.ok(report.executions >= seconds * 5, `only ${report.executions} executions in ${seconds} s`);
  for (const target of targets) assert.ok((report.byTarget[target] ?? 0) > 0, `no ${target} cases ran`);
  assert.ok(report.ok > 0, 'some mutated inputs still load and plan');
  assert.deepEqual(report.crashes.map((c) => `${c.signature} (saved ${c.savedAs})`), [], formatReport(report));
});
