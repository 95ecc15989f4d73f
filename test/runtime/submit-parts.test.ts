// firstSubmit: the first submitted part of a run of dispatches holds that many dispatches, the later ones submitEvery
// each. The submits are counted as they happen (the queue's submit wrapped), and every split gives the default
// split's outputs bit for bit: the same kernels run in the same order, only the command buffers are cut elsewhere.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { fixtureModels } from '../../fixtures/models.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import { FcmError } from '../../src/errors.js';
import { createSession, type SessionOptions } from '../../src/pipeline/session.js';
import { executorOf } from '../../src/runtime/executor.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { seededInput } from '../../src/runtime/compare.js';

after(releaseGpu);

test('firstSubmit: parts of the given sizes, counted at the queue, with the default split\'s results', async () => {
  const g = await loadModel(exportOnnx(fixtureModels.mobilenetv2_stack()), { source: 'm' });
  const x = g.inputs[0], y = g.outputs[0];
  const n = g.tensors.get(x)!.shape.reduce((a, b) => a * b, 1);
  const base = await createSession(g, { plan: 'unfused', submitEvery: 3 });
  // 10 dispatches. Encoded ahead a run submits one call per part; encoded in the run, one per part too.
  const cases: [SessionOptions, number][] = [
    [{ firstSubmit: 1, submitEvery: 0 }, 2],
    [{ firstSubmit: 2, submitEvery: 3 }, 4],
    [{ firstSubmit: 4, submitEvery: 0, encodeAhead: false }, 2],
    [{ firstSubmit: 1, submitEvery: 3, encodeAhead: false }, 4],
    [{ firstSubmit: 20 }, 1],
    // Growing parts: 1, 2, 4, then the 3 left; 2, then 4 capped at 3, 3, 2; 1, 3, 6 encoded in the run.
    [{ firstSubmit: 1, submitEvery: 0, submitGrowth: 2 }, 4],
    [{ firstSubmit: 2, submitEvery: 3, submitGrowth: 2 }, 4],
    [{ firstSubmit: 1, submitEvery: 0, submitGrowth: 3, encodeAhead: false }, 3],
  ];
  try {
    assert.equal(base.stats().dispatchesPerRun, 10);
    const want = [1, 2].map((seed) => base.run({ [x]: seededInput(n, seed) }));
    const expected = (await Promise.all(want)).map((r) => r[y].data);
    for (const [o, parts] of cases) {
      const what = JSON.stringify(o);
      const s = await createSession(g, { plan: 'unfused', ...o });
      const q = executorOf(s).ctx.device.queue;
      let submits = 0;
      const submit = q.submit.bind(q);
      q.submit = (cbs: Iterable<GPUCommandBuffer>) => { submits++; submit(cbs); };
      try {
        assert.equal(s.stats().passesPerRun, parts, what);
        assert.equal(s.stats().submitsPerRun, parts, what);
        for (const [i, seed] of [1, 2].entries()) {
          submits = 0;
          const r = await s.run({ [x]: seededInput(n, seed) });
          assert.equal(submits, parts, `${what}: queue.submit calls in run ${i + 1}`);
          assert.deepEqual(r[y].data, expected[i], `${what}: seed ${seed}`);
        }
      } finally {
        delete (q as { submit?: unknown }).submit;
        s.dispose();
      }
    }
  } finally {
    base.dispose();
  }
  for (const bad of [0, 1.5, -2]) {
    await assert.rejects(createSession(g, { plan: 'unfused', firstSubmit: bad }), (e: unknown) => e instanceof FcmError && /firstSubmit/.test(e.message), `firstSubmit ${bad}`);
  }
  for (const bad of [0.5, 0, Number.NaN]) {
    await assert.rejects(createSession(g, { plan: 'unfused', firstSubmit: 1, submitGrowth: bad }), (e: unknown) => e instanceof FcmError && /submitGrowth/.test(e.message), `submitGrowth ${bad}`);
  }
});

test('runs started together submit dispatches encoded before them, and the encoding of more waits for their submits', async () => {
  const g = await loadModel(exportOnnx(fixtureModels.mobilenetv2_stack()), { source: 'm' });
  const x = g.inputs[0], y = g.outputs[0];
  const n = g.tensors.get(x)!.shape.reduce((a, b) => a * b, 1);
  const s = await createSession(g, { plan: 'unfused', maxInFlight: 2 });
  const d = executorOf(s).ctx.device;
  const log: string[] = [];
  const createEncoder = d.createCommandEncoder.bind(d);
  const submit = d.queue.submit.bind(d.queue);
  try {
    const want: Float32Array[] = [];
    for (const seed of [3, 4]) want.push((await s.run({ [x]: seededInput(n, seed) }))[y].data);
    d.createCommandEncoder = (desc?: GPUCommandEncoderDescriptor) => {
      const e = createEncoder(desc);
      const begin = e.beginComputePass.bind(e);
      e.beginComputePass = (pd?: GPUComputePassDescriptor) => { log.push('encode'); return begin(pd); };
      return e;
    };
    d.queue.submit = (cbs: Iterable<GPUCommandBuffer>) => { log.push('submit'); submit(cbs); };
    await new Promise((r) => setImmediate(r));
    log.length = 0;
    const got = await Promise.all([3, 4].map((seed) => s.run({ [x]: seededInput(n, seed) })));
    // Both runs' submits come before any dispatch is encoded: the sets they took were encoded before them.
    const lastSubmit = log.lastIndexOf('submit');
    assert.ok(lastSubmit > 0 && !log.slice(0, lastSubmit).includes('encode'), log.join(' '));
    // The sets spent are encoded again afterwards (one turn after the submits).
    await new Promise((r) => setImmediate(r));
    assert.ok(log.slice(lastSubmit).includes('encode'), log.join(' '));
    got.forEach((r, i) => assert.deepEqual(r[y].data, want[i], `run ${i + 1}`));
  } finally {
    delete (d as { createCommandEncoder?: unknown }).createCommandEncoder;
    delete (d.queue as { submit?: unknown }).submit;
    s.dispose();
  }
});
