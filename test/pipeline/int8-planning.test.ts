// Planning a quantized model for the integer kernels on the H100 description: int8_time_factor (hw_configs/h100.cfg)
// keeps the integer FCMs that lost to their layers there out of the plan; the float plan of the same model does not
// see it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/graph/load.js';
import { buildMobileNetV2Int8 } from '../../fixtures/tflite-builder.js';
import { planFor, planningInput } from '../../src/pipeline/pipeline.js';
import { loadHw } from '../../src/planner/hw.js';
import type { HwConfig } from '../../src/planner/hw-config.js';

test('the H100 description plans the int8 MobileNetV2 without the integer FCMs the tuner dropped there, and its float plan as without the factor', async () => {
  const g = await loadModel(buildMobileNetV2Int8(), { source: 'mv2_int8.tflite' });
  const h100 = loadHw('h100');
  const fused = (hw: HwConfig, integer: boolean) => planFor(planningInput(g, hw, integer)).modules.filter((m) => (m.nodes?.length ?? 0) > 1).map((m) => m.nodes!.slice(0, 2).join('+'));
  assert.equal(h100.int8TimeFactor, 5);
  // Of the 30 integer modules the tuner timed on the H100 it dropped 27; 5 is the smallest factor that leaves none of
  // them in the plan (hw_configs/h100.cfg), and with it the integer plan is the unfused one.
  assert.deepEqual(fused(h100, true), []);
  assert.ok(fused({ ...h100, int8TimeFactor: 4 }, true).length > 0, 'a factor of 4 keeps some integer FCMs');
  const without: HwConfig = { ...h100, int8TimeFactor: undefined };
  assert.ok(fused(without, true).length >= 10, `without the factor the integer plan fuses most pairs: ${fused(without, true).length}`);
  assert.deepEqual(fused(h100, false), fused(without, false));
});
