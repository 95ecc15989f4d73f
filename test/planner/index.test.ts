// planFusion (src/planner/index.ts), the planner's entry point: which planner each mode runs, which options
// reach it, the name recorded in the plan, and the errors for bad options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FcmError } from '../../src/errors.js';
import type { Dag } from '../../src/planner/dag.js';
import { loadHw } from '../../src/planner/hw.js';
import { planFusion, planModes, type PlanMode } from '../../src/planner/index.js';
import { planOptimal } from '../../src/planner/optimal.js';
import { planFusePlanner } from '../../src/planner/fuseplanner/plan.js';

/** input -> pw 1 -> dw 2 -> pw 3 -> add 4 (with the input): an inverted-residual block, 32x32. */
const dag = [
  { id: 0, name: 'quantize', activation: '0', parents: [], children: [1, 4], ifms_shape: [1, 32, 32, 16], ofms_shape: [1, 32, 32, 16] },
  { id: 1, name: 'conv_2d', activation: 'RELU6', parents: [0], children: [2], type: 'pw', weights_shape: [64, 16], ifms_shape: [16, 32, 32], ofms_shape: [64, 32, 32], strides: 1 },
  { id: 2, name: 'depthwise_conv_2d', activation: 'RELU6', parents: [1], children: [3], type: 'dw', weights_shape: [64, 3, 3], ifms_shape: [64, 32, 32], ofms_shape: [64, 32, 32], strides: 1 },
  { id: 3, name: 'conv_2d', activation: '0', parents: [2], children: [4], type: 'pw', weights_shape: [16, 64], ifms_shape: [64, 32, 32], ofms_shape: [16, 32, 32], strides: 1 },
  { id: 4, name: 'add', activation: '0', parents: [0, 3], children: [], ifms_shape: [1, 32, 32, 16], ofms_shape: [1, 32, 32, 16] },
] as unknown as Dag;

const h100 = loadHw('h100'); // has the time model: optimal mode plans for time and reports it
const convLayers = [1, 2, 3];
const coveredOnce = (layers: number[][]) => convLayers.every((id) => layers.filter((l) => l.includes(id)).length === 1);

function fails(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FcmError, String(e));
    assert.equal(e.exitCode, 2);
    assert.match(e.message, pattern);
    return true;
  });
}

test('planModes lists both modes, optimal (the default) first', () => {
  assert.deepEqual([...planModes], ['optimal', 'fuseplanner']);
  for (const mode of planModes) assert.equal(planFusion(dag, h100, { mode }).mode, mode);
});

test('the plan records the given model name, else "model", in both modes', () => {
  for (const mode of planModes) {
    assert.equal(planFusion(dag, h100, { mode }).model, 'model', mode);
    assert.equal(planFusion(dag, h100, { mode, model: 'block.json' }).model, 'block.json', mode);
  }
});

test('optimal mode is planOptimal with dtypeBytes, batch and exclude passed through', () => {
  const base = planFusion(dag, h100, { mode: 'optimal', model: 'b' });
  assert.deepEqual(base, planOptimal(dag, h100, { model: 'b' }));
  assert.equal(base.estimates, undefined);
  assert.ok(coveredOnce(base.modules.map((m) => m.layers)), 'each conv layer in exactly one module');
  const fused = base.modules.find((m) => m.layers.length === 2);
  assert.ok(fused, 'the block has a profitable FCM on the H100');

  // Each option changes the plan, and the plan is the optimal planner's with that option. At batch 1 and 4 this
  // block's kernels sit on the description's kernel floor (kernel_floor_us): 16 images are past it.
  const batch = planFusion(dag, h100, { mode: 'optimal', model: 'b', batch: 16 });
  assert.deepEqual(batch, planOptimal(dag, h100, { model: 'b', batch: 16 }));
  assert.ok(batch.totals.timeUsUnfused! > base.totals.timeUsUnfused!, 'sixteen images take longer than one');

  const int8 = planFusion(dag, h100, { mode: 'optimal', model: 'b', dtypeBytes: 1, batch: 16 });
  assert.deepEqual(int8, planOptimal(dag, h100, { model: 'b', dtypeBytes: 1, batch: 16 }));
  assert.ok(int8.totals.timeUsUnfused! < batch.totals.timeUsUnfused!, 'one byte per element moves less than four');

  const key = `${fused.layers[0]}:${fused.layers[1]}`;
  const excluded = planFusion(dag, h100, { mode: 'optimal', model: 'b', exclude: new Set([key]) });
  assert.deepEqual(excluded, planOptimal(dag, h100, { model: 'b', exclude: new Set([key]) }));
  assert.ok(!excluded.modules.some((m) => m.layers.join(':') === key), `${key} is left unfused`);
  assert.ok(coveredOnce(excluded.modules.map((m) => m.layers)));
});

test('fuseplanner mode is the FusePlanner reference port, with its estimates; the optimal-mode options do not apply', () => {
  const p = planFusion(dag, h100, { mode: 'fuseplanner', model: 'b' });
  assert.deepEqual(p, planFusePlanner(dag, h100, 'b'));
  assert.notEqual(p.estimates, undefined);
  assert.deepEqual(planFusion(dag, h100, { mode: 'fuseplanner', model: 'b', batch: 4, dtypeBytes: 1, exclude: new Set(['1:2']) }), p);
});

test('bad options are invalid input naming the model', () => {
  fails(() => planFusion(dag, h100, { mode: 'optimal', model: 'b.json', batch: 0 }), /^b\.json: batch 0 is not a whole number >= 1/);
  fails(() => planFusion(dag, h100, { mode: 'optimal', model: 'b.json', batch: 1.5 }), /^b\.json: batch 1\.5/);
  fails(() => planFusion(dag, h100, { mode: 'optimal', model: 'b.json', dtypeBytes: 0 }), /^b\.json: data width 0 bytes is not positive/);
  fails(() => planFusion(dag, h100, { mode: 'optimal', dtypeBytes: -1 }), /^model: data width -1/);
  // From JavaScript, a mode outside planModes is refused rather than planned as either.
  fails(() => planFusion(dag, h100, { mode: 'fastest' as PlanMode, model: 'b.json' }), /^b\.json: unknown planning mode 'fastest' \(optimal, fuseplanner\)/);
});
