// fcm-opt's integer executor on lavapipe, unfused and fused as planned, against the recorded LiteRT.js outputs
// (test/data/tflite-oracle/, see test/quant/tflite-oracle.test.ts for what they show): bit for bit equal to the
// integer reference, so within the same measured bounds of the interpreter (XNNPACK's float requantization against
// TFLite's double rounding). The kernels compute their requantization multipliers with src/quant's code; this is
// where that code meets a real interpreter end to end.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../../src/graph/load.js';
import { loadHw } from '../../../src/planner/hw.js';
import { runInt8Reference } from '../../../src/quant/run-reference.js';
import { releaseGpu } from '../../../src/runtime/device.js';
import { createInt8Session } from '../../../src/pipeline/session.js';
import { diff, endToEndBounds, fmt, irInput, loadRecord, outputLsb, toNhwc } from '../../quant/tflite-oracle-records.js';

after(releaseGpu);

async function check(name: string, plans: Array<'unfused' | 'auto'>) {
  const rec = loadRecord(name);
  const g = await loadModel(rec.model.bytes(), { source: `${name}.tflite` });
  const hw = loadHw('lavapipe');
  const fused: number[] = [];
  for (const plan of plans) {
    const s = await createInt8Session(g, { plan, hw });
    try {
      fused.push(s.stats().fusedModules);
      for (let i = 0; i < rec.model.seeds.length; i++) {
        const x = irInput(rec.model.inputs(rec.model.seeds[i]));
        const ref = runInt8Reference(g, { [g.inputs[0]]: x });
        const out = await s.run({ [g.inputs[0]]: x });
        g.outputs.forEach((y, k) => {
          const o = out[y];
          const have = o.raw ?? o.data;
          assert.deepEqual(Array.from(have), Array.from(ref.outputs[k].data as ArrayLike<number>), `${name} ${plan}: output ${y} equals the reference`);
          const d = diff(toNhwc(have, o.shape), rec.outputs.xnnpack[i][k], outputLsb(have));
          const [most, max] = endToEndBounds[name][k];
          assert.ok(d.differ <= most && d.max <= max, `${name} ${plan}, seed ${rec.model.seeds[i]}, output ${y}: ${fmt(d)}`);
        });
      }
    } finally {
      s.dispose();
    }
  }
  return fused;
}

test('int8 MobileNet-style: unfused and fused executor against LiteRT.js', async () => {
  const [unfused, auto] = await check('mobilenet-style-int8', ['unfused', 'auto']);
  assert.equal(unfused, 0);
  assert.ok(auto > 0, `the planner fused ${auto} pairs`);
});

test('one of each integer op: unfused and fused executor against LiteRT.js', async () => {
  const [unfused, auto] = await check('oracle-ops', ['unfused', 'auto']);
  assert.equal(unfused, 0);
  assert.ok(auto > 0, `the planner fused ${auto} pairs`);
});

// About 30 s unfused and 3 min fused on lavapipe.
test('the FusePlanner reference MobileNetV1 at 224x224 against LiteRT.js', { skip: process.env.FCM_OPT_SLOW_TESTS ? false : 'set FCM_OPT_SLOW_TESTS=1' }, async () => {
  const [, auto] = await check('mobilenet-v1-224', ['unfused', 'auto']);
  assert.ok(auto > 0);
});
