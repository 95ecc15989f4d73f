// medianProfiles / medianNodeTimes / medianModuleTimes (src/bench/profile.ts) on fake sessions: which nodes are timed, in which order
// the sessions alternate, what medians come back, and how much heat each profile gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { medianModuleTimes, medianNodeTimes, medianProfiles } from '../../src/bench/profile.js';
import { unsupported } from '../../src/errors.js';

function fake(name: string, nodes: string[], log: string[], msOf: (node: string, call: number) => number) {
  let calls = 0;
  return {
    run: async () => { log.push(`${name} run`); },
    profile: async () => {
      log.push(`${name} profile`);
      const c = calls++;
      return { method: 'timestamp', nodes: nodes.map((node) => ({ node, op: 'Conv', ms: msOf(node, c) })) };
    },
    timeNodes: async (groups: readonly (readonly string[])[], opts?: { iters?: number; heatMs?: number }) => {
      log.push(`${name} time ${groups.map((g) => g.join('+')).join(',')} x${opts?.iters}`);
      const c = calls++;
      return groups.map((g) => msOf(g[0], c));
    },
    dispose: () => undefined,
  };
}

test('medianNodeTimes: every profiled node timed alone, sessions alternating each round, each first equally often, medians per node', async () => {
  const log: string[] = [];
  const heats: (number | undefined)[] = [];
  // Per call c: a = 1, 2, 3, ...; b = 10 * c.
  const a = fake('A', ['a1', 'a2'], log, (n, c) => (n === 'a1' ? c : 100 + c));
  const b = fake('B', ['b1'], log, (_n, c) => 10 * c);
  const timeA = a.timeNodes;
  a.timeNodes = async (g, o) => { heats.push(o?.heatMs); return timeA(g, o); };
  // 3 rounds of 2 sessions become 4: with 3, A would be first in two of them and B in one.
  const [ta, tb] = await medianNodeTimes([a, b], {}, 3, 7, 250);
  assert.deepEqual(log.filter((l) => l.includes('time')), [
    'A time a1,a2 x7', 'B time b1 x7', // round 0: A first
    'B time b1 x7', 'A time a1,a2 x7', // round 1: B first
    'A time a1,a2 x7', 'B time b1 x7',
    'B time b1 x7', 'A time a1,a2 x7',
  ]);
  assert.deepEqual(heats, [250, 250, 250, 250]);
  // A's calls: profile 0, then timeNodes 1..4 -> median 2.5; B's: profile 0, timeNodes 1..4 -> median 25.
  assert.deepEqual(ta.map((e) => [e.node, e.gpuMs]), [['a1', 2.5], ['a2', 102.5]]);
  assert.deepEqual(tb.map((e) => [e.node, e.gpuMs]), [['b1', 25]]);
});

test('medianProfiles: heat runs sized from a first profile (none where one inference takes longer than heatMs)', async () => {
  const opts: (number | undefined)[] = [];
  const session = (ms: number) => ({
    run: async () => undefined,
    profile: async (_f?: unknown, o?: { heatRuns?: number }) => { opts.push(o?.heatRuns); return { nodes: [{ node: 'n', ms }] }; },
    dispose: () => undefined,
  });
  await medianProfiles([session(0.5)], {}, 2, 0, 20);
  assert.deepEqual(opts, [undefined, 40, 40]);
  opts.length = 0;
  await medianProfiles([session(50)], {}, 1, 0, 20);
  assert.deepEqual(opts, [undefined, 0]);
});

test('medianModuleTimes: one-pass timing where every session can, profiles where one cannot or refuses', async () => {
  const log: string[] = [];
  const timed = fake('A', ['a1'], log, () => 1);
  const plain = { run: async () => undefined, profile: async () => ({ nodes: [{ node: 'p1', ms: 2 }] }), dispose: () => undefined };
  const refusing = { ...fake('R', ['r1'], log, () => 3), timeNodes: async () => { throw unsupported('r.onnx', 'node timing is not available where host steps split an inference'); } };
  const failing = { ...fake('F', ['f1'], log, () => 3), timeNodes: async () => { throw new Error('device lost'); } };
  assert.equal((await medianModuleTimes([timed], {}, 1)).method, 'pass');
  assert.equal((await medianModuleTimes([timed, plain], {}, 1, { warmRuns: 0 })).method, 'profile');
  const r = await medianModuleTimes([refusing], {}, 1, { warmRuns: 0 });
  assert.equal(r.method, 'profile');
  assert.deepEqual(r.times[0].map((e) => e.node), ['r1']);
  // Any other failure is the caller's to see.
  await assert.rejects(medianModuleTimes([failing], {}, 1), /device lost/);
});
