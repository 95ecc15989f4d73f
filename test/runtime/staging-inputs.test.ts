// Session.stagingInputs: feeds written straight into the upload's staging memory run as the same feeds from arrays
// of the caller's own, and the run that takes them copies nothing (it takes that very buffer, and unmaps it).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import type { Graph } from '../../src/graph/ir.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { seededInput } from '../../src/runtime/compare.js';

after(releaseGpu);

function net(): Graph {
  const b = new GraphBuilder('tiny', 5);
  const x = b.input('input', [1, 3, 12, 12]);
  let y = b.relu(b.conv(x, { filters: 8, kernel: 3, stride: 2 }));
  y = b.conv(y, { filters: 6 });
  return b.build([b.gemm(b.flatten(b.globalAveragePool(y)), 4)]);
}

for (const precision of ['fp32', 'fp16'] as const) {
  test(`${precision}: inputs written into lent staging memory give the outputs of the same values fed from arrays`, async () => {
    const s = await createSession(net(), { plan: 'unfused', precision });
    try {
      const y = s.outputNames[0];
      const feeds = [0, 1, 2, 3].map((i) => seededInput(3 * 12 * 12, 40 + i));
      const want: number[][] = [];
      for (const f of feeds) want.push(Array.from((await s.run({ input: f }))[y].data));
      // Two lent at once, run in the other order, the first after a run of the caller's own arrays in between.
      const a = await s.stagingInputs();
      const b = await s.stagingInputs();
      assert.deepEqual(Object.keys(a), ['input']);
      assert.equal(a.input.length, 3 * 12 * 12);
      assert.notEqual(a.input.buffer, b.input.buffer);
      a.input.set(feeds[0]);
      b.input.set(feeds[1]);
      const rb = s.run({ input: b.input });
      const rc = s.run({ input: feeds[2] });
      const ra = s.run({ input: a.input });
      assert.deepEqual(Array.from((await ra)[y].data), want[0]);
      assert.deepEqual(Array.from((await rb)[y].data), want[1]);
      assert.deepEqual(Array.from((await rc)[y].data), want[2]);
      // The run took the lent buffer itself: unmapped, its arrays are empty now.
      assert.equal(a.input.length, 0);
      assert.equal(b.input.length, 0);
      // Runs in flight after lending, and memory lent but never run, leave later runs right.
      const never = await s.stagingInputs();
      never.input.fill(Number.NaN);
      const rs = await Promise.all(feeds.map((f) => s.run({ input: f })));
      rs.forEach((r, i) => assert.deepEqual(Array.from(r[y].data), want[i]));
      const c = await s.stagingInputs();
      c.input.set(feeds[3]);
      assert.deepEqual(Array.from((await s.run({ input: c.input }))[y].data), want[3]);
    } finally {
      s.dispose();
    }
  });
}

test('sessions uploading otherwise lend nothing', async () => {
  const s = await createSession(net(), { plan: 'unfused', upload: 'write-buffer' });
  try {
    assert.deepEqual(await s.stagingInputs(), {});
  } finally {
    s.dispose();
  }
});
