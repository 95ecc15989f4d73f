// RELIABILITY.md, "Running": two sessions in one process and concurrent run() calls on one session give the same
// results as sequential runs. A session owns one set of activation buffers: run() calls encode and submit in turn
// (executor.ts `serial`; the GPU runs submissions in order) and up to maxInFlight of them wait for their outputs at
// once, each with its own read-back set; sessions share the device and its pipeline cache only.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { fixtureModels } from '../../fixtures/models.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import { createSession } from '../../src/pipeline/session.js';
import type { Session } from '../../src/runtime/executor.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { seededInput } from '../../src/runtime/compare.js';

after(releaseGpu);

const load = (name: keyof typeof fixtureModels) => loadModel(exportOnnx(fixtureModels[name]()), { source: name });
const inputs = Array.from({ length: 8 }, (_, i) => seededInput(3 * 32 * 32, 100 + i));

async function sequential(s: Session): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const x of inputs) out.push((await s.run({ input: x }))[s.outputNames[0]].data);
  return out;
}

test('concurrent run() calls on one session equal sequential runs, input for input', async () => {
  const s = await createSession(await load('mobilenetv2_stack'), { plan: 'auto', hw: 'rtxa4000' });
  try {
    const seq = await sequential(s);
    // Distinct inputs give distinct outputs, so a run that read another's input or output would show.
    assert.notDeepEqual(seq[0], seq[1]);
    const conc = await Promise.all(inputs.map((x) => s.run({ input: x })));
    conc.forEach((r, i) => assert.deepEqual(r[s.outputNames[0]].data, seq[i], `concurrent run ${i} differs`));
    // Results are copies: a later run does not change an earlier result.
    const first = (await s.run({ input: inputs[0] }))[s.outputNames[0]].data;
    await s.run({ input: inputs[1] });
    assert.deepEqual(first, seq[0]);
    // A refused call in the middle of the queue fails alone.
    const mixed = await Promise.allSettled([s.run({ input: inputs[2] }), s.run({ input: inputs[3].subarray(1) }), s.run({ input: inputs[4] })]);
    assert.equal(mixed[1].status, 'rejected');
    assert.deepEqual((mixed[0] as PromiseFulfilledResult<Awaited<ReturnType<Session['run']>>>).value[s.outputNames[0]].data, seq[2]);
    assert.deepEqual((mixed[2] as PromiseFulfilledResult<Awaited<ReturnType<Session['run']>>>).value[s.outputNames[0]].data, seq[4]);
    // profile() queues with run() too.
    const [, p, r] = await Promise.all([s.run({ input: inputs[5] }), s.profile({ input: inputs[6] }), s.run({ input: inputs[7] })]);
    assert.ok(p.nodes.length > 0);
    assert.deepEqual(r[s.outputNames[0]].data, seq[7]);
  } finally {
    s.dispose();
  }
});

test('two sessions in one process, run concurrently and interleaved, equal their sequential runs', async () => {
  // Two of the same model (shared pipelines, separate buffers) and a different model.
  const g = await load('mobilenetv1_stack');
  const a = await createSession(g, { plan: 'unfused' });
  const b = await createSession(g, { plan: 'auto', hw: 'rtxa4000' });
  const c = await createSession(await load('squeeze_excite'), { plan: 'unfused' });
  try {
    const seqA = await sequential(a), seqB = await sequential(b), seqC = await sequential(c);
    const all = await Promise.all(inputs.flatMap((x) => [a.run({ input: x }), b.run({ input: x }), c.run({ input: x })]));
    inputs.forEach((_, i) => {
      assert.deepEqual(all[3 * i][a.outputNames[0]].data, seqA[i], `session a, run ${i}`);
      assert.deepEqual(all[3 * i + 1][b.outputNames[0]].data, seqB[i], `session b, run ${i}`);
      assert.deepEqual(all[3 * i + 2][c.outputNames[0]].data, seqC[i], `session c, run ${i}`);
    });
    // Disposing one session leaves the others working (pipelines are the device's, buffers the session's).
    a.dispose();
    assert.deepEqual((await b.run({ input: inputs[3] }))[b.outputNames[0]].data, seqB[3]);
  } finally {
    a.dispose();
    b.dispose();
    c.dispose();
  }
});
