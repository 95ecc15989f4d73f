// A plan saved as JSON read back (src/planner/plan-load.ts): the same plan, kernel choices included; files that are
// not plans are exit 2 naming the file and the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FcmError } from '../../src/errors.js';
import { planFusion } from '../../src/planner/index.js';
import { loadHw } from '../../src/planner/hw.js';
import { planToJson } from '../../src/planner/format.js';
import { loadPlan } from '../../src/planner/plan-load.js';
import { toDag } from '../../src/planner/to-dag.js';
import { prepareForRun } from '../../src/pipeline/pipeline.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { fixtureModels } from '../../fixtures/models.js';

const dir = mkdtempSync(join(tmpdir(), 'fcm-plan-load-'));

test('loadPlan: a saved plan with kernel choices reads back equal', async () => {
  const g = await prepareForRun(exportOnnx(fixtureModels.mobilenetv2_stack()), { plan: 'unfused' });
  const plan = planFusion(toDag(g), loadHw('lavapipe'), { mode: 'optimal', model: 'm' });
  const pw = g.nodes.find((n) => n.op === 'Conv')!.name;
  const saved = { ...plan, kernels: { [pw]: { variant: 'vec4:RF4T64', tuned: { us: 3.5, ruleUs: 4.25, rule: 'gemm:TX8TY8RF4KS1' } } } };
  const path = join(dir, 'plan.json');
  writeFileSync(path, planToJson(saved));
  assert.deepEqual(loadPlan(path), JSON.parse(JSON.stringify(saved)));
});

test('loadPlan: not JSON, not a plan, a bad module or kernel choice: exit 2 naming the file', () => {
  const cases: [string, RegExp][] = [
    ['{"modules": [', /bad\.json: not valid JSON/],
    ['[1, 2]', /bad\.json: is not a plan/],
    ['{"modules": [{"kind": "xx", "layers": [0], "tiles": {}}]}', /bad\.json: module 0: kind must be one of/],
    ['{"modules": [{"kind": "pw", "layers": [0], "tiles": {"h": "4"}}]}', /module 0: tile 'h' must be a number/],
    ['{"modules": [], "kernels": {"conv_1": "vec4"}}', /bad\.json: kernel choice of 'conv_1': must be \{ "variant": string \}/],
  ];
  for (const [text, re] of cases) {
    const path = join(dir, 'bad.json');
    writeFileSync(path, text);
    assert.throws(() => loadPlan(path), (e: unknown) => e instanceof FcmError && e.kind === 'invalid' && re.test(e.message), text);
  }
});
