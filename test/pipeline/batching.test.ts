// Requests batched on the fly (src/pipeline/batching.ts): each request's outputs are its own, whether it ran alone or
// side by side with others in the batch session; queued requests do share batches.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import type { Graph } from '../../src/graph/ir.js';
import { FcmError } from '../../src/errors.js';
import { createSession } from '../../src/pipeline/session.js';
import { RequestBatcher } from '../../src/pipeline/batching.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { seededInput } from '../../src/runtime/compare.js';

after(releaseGpu);

// The same small network (same seed: same weights) at a given batch: conv, depthwise, pointwise, pool, classifier.
function net(batch: number): Graph {
  const b = new GraphBuilder('tiny', 3);
  const x = b.input('input', [batch, 3, 16, 16]);
  let y = b.relu(b.conv(x, { filters: 8, kernel: 3, stride: 2 }));
  y = b.relu(b.conv(y, { filters: 8, kernel: 3, group: 8 }));
  y = b.conv(y, { filters: 12 });
  return b.build([b.gemm(b.flatten(b.globalAveragePool(y)), 5)]);
}

test('batched requests: each gets its own outputs, alone or in a batch; requests queued behind a run share one', async () => {
  const one = await createSession(net(1), { plan: 'unfused' });
  const many = await createSession(net(3), { plan: 'unfused' });
  const b = new RequestBatcher(one, many, 3, 1);
  const ref = await createSession(net(1), { plan: 'unfused' });
  try {
    const y = one.outputNames[0];
    const feeds = Array.from({ length: 7 }, (_, i) => ({ input: seededInput(3 * 16 * 16, 100 + i) }));
    const want: { data: Float32Array }[] = [];
    for (const f of feeds) want.push((await ref.run(f))[y]);
    // Seven at once with one inference in flight: the first runs alone, the next three and the last three in batches
    // of three (the last padded with zeros to the batch session's size). Each batch is packed into the batch
    // session's lent staging memory (the run then copies nothing more).
    let lent = 0;
    const stagingInputs = many.stagingInputs.bind(many);
    many.stagingInputs = async () => { lent++; return stagingInputs(); };
    const got = await Promise.all(feeds.map((f) => b.run(f)));
    const st = b.stats();
    assert.equal(lent, st.batches);
    assert.equal(st.requests, 7);
    assert.ok(st.batches >= 2 && st.batchedRequests >= 6, JSON.stringify(st));
    got.forEach((r, i) => {
      assert.deepEqual(r[y].shape, [1, 5]);
      // The batch-3 session may tile its layers differently from the batch-1 one: the same sums in another order,
      // so equal to float32 rounding, not bit for bit.
      const scale = Math.max(...want[i].data.map(Math.abs));
      for (let k = 0; k < 5; k++) assert.ok(Math.abs(r[y].data[k] - want[i].data[k]) <= 1e-5 * scale, `request ${i} output ${k}: ${r[y].data[k]} vs ${want[i].data[k]}`);
    });
    // Distinct inputs, distinct outputs: no request got another's slice.
    for (let i = 1; i < 7; i++) assert.notDeepEqual(got[i][y].data, got[i - 1][y].data);
    // A request alone runs on the batch-1 session.
    const before = b.stats().batches;
    await b.run(feeds[0]);
    assert.equal(b.stats().batches, before);
    await assert.rejects(b.run({ input: new Float32Array(5) }), (e: unknown) => e instanceof FcmError && /768 values/.test(e.message));
  } finally {
    b.dispose();
    ref.dispose();
  }
});

test('requests that arrive while one runs wait for it and go together, though a second inference could start', async () => {
  const one = await createSession(net(1), { plan: 'unfused' });
  const many = await createSession(net(3), { plan: 'unfused' });
  const b = new RequestBatcher(one, many, 3, 2);
  try {
    const feeds = Array.from({ length: 3 }, (_, i) => ({ input: seededInput(3 * 16 * 16, 200 + i) }));
    await Promise.all(feeds.map((f) => b.run(f)));
    // The first alone; the second and third together once it is done (not the second alone as a second inference).
    assert.deepEqual(b.stats(), { requests: 3, batches: 1, batchedRequests: 2 });
    // A full batch does not wait: four at once with maxBatch 3 are one alone, then three together at once.
    await Promise.all([...feeds, feeds[0]].map((f) => b.run(f)));
    assert.deepEqual(b.stats(), { requests: 7, batches: 2, batchedRequests: 5 });
  } finally {
    b.dispose();
  }
});

test('callers that send their next request when the last one is answered fill the batches', async () => {
  const one = await createSession(net(1), { plan: 'unfused' });
  const many = await createSession(net(3), { plan: 'unfused' });
  const b = new RequestBatcher(one, many, 3);
  try {
    const f = { input: seededInput(3 * 16 * 16, 300) };
    // Three callers, four requests each, each request sent when the caller's last one is answered (a server's
    // clients, or a throughput benchmark). The first request finds nothing in flight and runs alone; from then on
    // the answered callers' next requests join the ones queued: three full batches, and the two left over together.
    const caller = async () => { for (let i = 0; i < 4; i++) await b.run(f); };
    await Promise.all([caller(), caller(), caller()]);
    assert.deepEqual(b.stats(), { requests: 12, batches: 4, batchedRequests: 11 });
  } finally {
    b.dispose();
  }
});

test('batching refuses sessions whose inputs and outputs lack the batch dimension it is given', async () => {
  const one = await createSession(net(1), { plan: 'unfused' });
  const two = await createSession(net(2), { plan: 'unfused' });
  try {
    assert.throws(() => new RequestBatcher(one, two, 3), (e: unknown) => e instanceof FcmError && /first \(batch\) dimension/.test(e.message));
    assert.throws(() => new RequestBatcher(one, two, 1), (e: unknown) => e instanceof FcmError && /maxBatch/.test(e.message));
  } finally {
    one.dispose();
    two.dispose();
  }
});
