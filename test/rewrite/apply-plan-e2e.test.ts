// From a model to its fused graph: prepareGraph, the DAG writer, planOptimal, applyPlan.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixtureModels } from '../../fixtures/models.js';
import { prepareGraph } from '../../src/graph/prepare.js';
import { toDag } from '../../src/planner/to-dag.js';
import { planOptimal } from '../../src/planner/optimal.js';
import { applyPlan } from '../../src/rewrite/apply-plan.js';
import { fuseEpilogues } from '../../src/rewrite/epilogues.js';
import { fcmDomain } from '../../src/graph/ir.js';
import type { HwConfig } from '../../src/planner/hw-config.js';

// lavapipe-like limits: 32 KiB of workgroup storage, and a time model (so the plan is chosen by time).
const hw: HwConfig = { name: 'lavapipe-like', sms: 16, l1BytesPerSm: 64 * 1024, shmemBytesPerSm: 64 * 1024, warpSize: 32, workgroupStorageBytes: 32 * 1024 };
const hwTime: HwConfig = { ...hw, dramGBps: 2400, fp32Gflops: 67000, dispatchOverheadUs: 6 };

for (const name of ['mobilenetv2_stack', 'mobilenetv1_stack']) {
  test(`${name}: every fused pair of the plan becomes one FCM node`, () => {
    const g = prepareGraph(fixtureModels[name]());
    const dag = toDag(g);
    for (const h of [hw, hwTime]) {
      const plan = planOptimal(dag, h, { model: name, dtypeBytes: 4 });
      const pairs = plan.modules.filter((m) => m.layers.length === 2);
      assert.ok(pairs.length >= 1, `${name} on ${h.name}: the plan fuses something`);
      for (const m of plan.modules) assert.ok(m.nodes && m.nodes.length >= m.layers.length, 'modules carry node names');
      const fused = applyPlan(g, plan);
      const fcms = fused.nodes.filter((n) => n.domain === fcmDomain);
      assert.equal(fcms.length, pairs.length);
      assert.equal(fused.nodes.length, fuseEpilogues(g).nodes.length - pairs.length);
      assert.deepEqual(fused.outputs, g.outputs);
      for (const n of fcms) {
        assert.equal(n.inputs.length, 6);
        for (const k of ['tileFilters1', 'tileFilters2', 'tileH', 'tileW']) assert.ok(Number.isInteger(n.attrs[k]) && (n.attrs[k] as number) >= 1, k);
      }
    }
  });
}
