// Throughput mode of the bench (src/bench/bench.ts throughput): how many runs it keeps in flight and how many it makes,
// with a stand-in session (no timing is asserted); and how the report prints the host split and throughput.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { throughput, type BenchReport } from '../../src/bench/bench.js';
import { formatBench } from '../../src/bench/format.js';

test('throughput keeps at most `inFlight` runs going, runs each round fully, and reports images per second', async () => {
  let live = 0, most = 0, calls = 0;
  const s = {
    run: async () => {
      calls++;
      live++;
      most = Math.max(most, live);
      await new Promise((r) => setImmediate(r));
      live--;
    },
  };
  const t = await throughput(s, { x: new Float32Array(1) }, 8, 4, 10, 3);
  // One warm-up round in flight, then 3 rounds each way.
  assert.equal(calls, 10 * (1 + 2 * 3));
  assert.equal(most, 4);
  assert.equal(t.concurrency, 4);
  assert.equal(t.runsPerRound, 10);
  assert.ok(t.imagesPerSecond > 0 && t.sequentialImagesPerSecond > 0);
  assert.equal(t.ratio, t.imagesPerSecond / t.sequentialImagesPerSecond);
});

test('the text report shows the host split and the throughput when present', () => {
  const r: BenchReport = {
    model: 'm.onnx', hw: 'lavapipe', device: 'cpu', batch: 1, runs: 2, warmup: 0, block: 1, results: [], layers: [],
    hostSplit: { runs: 2, uploadMs: 0.1, encodeMs: 0.2, submitMs: 0.3, waitMs: 0.4, readMs: 0.05 },
    throughput: { concurrency: 4, runsPerRound: 20, rounds: 3, imagesPerSecond: 200, sequentialImagesPerSecond: 100, ratio: 2 },
  };
  const text = formatBench(r);
  assert.match(text, /fused host time per run \(ms, mean of 2\): upload 0\.100, encode 0\.200, submit 0\.300, wait 0\.400, read 0\.050/);
  assert.match(text, /200\.0 images\/s with 4 in flight, 100\.0 one at a time \(2\.00x\)/);
  assert.doesNotMatch(formatBench({ ...r, hostSplit: undefined, throughput: undefined }), /host time|images\/s with/);
});

test('fcm-opt bench --concurrency takes an integer >= 1 (exit 2 otherwise, before any GPU work)', async () => {
  const { cli } = await import('../cli/run-cli.js');
  for (const bad of ['0', '-2', '1.5', 'four']) {
    const r = await cli('bench', 'fixtures/bundled/mobilenetv2-slim.onnx', '--hw', 'lavapipe', '--concurrency', bad);
    assert.equal(r.code, 2, `${bad}: ${r.err}`);
    assert.match(r.err, /--concurrency: expected an integer >= 1/);
  }
});
