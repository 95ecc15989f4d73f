// The real MobileFaceNet (float32 TFLite, 112x112, batch 2, fetched by scripts/fetch-models.mjs from the
// pinned npm package): imports, plans (planFusion optimal for lavapipe), runs on the executor fused and
// unfused, and matches onnxruntime CPU on the ONNX export of the imported graph within the executor's
// tolerance. About 25 s on lavapipe (two sessions of ~2 s per run plus shader compilation).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadModel } from '../../src/graph/load.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { toDag } from '../../src/planner/to-dag.js';
import { planFusion } from '../../src/planner/index.js';
import { loadHw } from '../../src/planner/hw.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { compareOutputs, seededInput } from '../../src/runtime/compare.js';
import { fcmDomain } from '../../src/graph/ir.js';
import { runOrt } from '../../src/cli/check.js';

const { ensureModel } = (await import(pathToFileURL(join(process.cwd(), 'scripts/fetch-models.mjs')).href)) as {
  ensureModel: (name: string) => Promise<string>;
};

after(releaseGpu);

describe('MobileFaceNet.tflite on the executor', () => {
  it('imports, plans, runs fused and unfused, and matches onnxruntime on its ONNX export', async () => {
    const path = await ensureModel('mobilefacenet');
    const g = await loadModel(path);
    const [x] = g.inputs, [y] = g.outputs;
    assert.deepEqual(g.tensors.get(x)!.shape, [2, 3, 112, 112], 'input is NCHW in the IR');
    assert.deepEqual(g.tensors.get(y)!.shape, [2, 192]);
    const dag = toDag(g);
    assert.equal(dag.filter((l) => l.type === 'dw').length, 17);
    const plan = planFusion(dag, loadHw('lavapipe'), { mode: 'optimal', model: path });
    assert.ok(plan.totals.gma <= plan.totals.gmaUnfused, 'the optimal plan never moves more bytes than LBL');
    const fused = plan.modules.filter((m) => m.layers.length > 1).length;
    // PReLU spelled as 5 ops sits between most DW/PW pairs (not recognized as PRelu yet): one PW-PW module.
    assert.ok(fused >= 1, 'at least one fused module');

    const input = seededInput(2 * 3 * 112 * 112, 5);
    const ref = (await runOrt(exportOnnx(g), { [x]: { data: input, shape: [2, 3, 112, 112] } }, [y], path)).get(y)!;
    assert.ok(ref && ref.length === 384);
    const outs: Float32Array[] = [];
    for (const p of ['unfused', plan] as const) {
      const s = await createSession(g, { plan: p });
      try {
        assert.equal(s.graph.nodes.filter((n) => n.domain === fcmDomain).length, p === 'unfused' ? 0 : fused);
        const out = (await s.run({ [x]: input }))[y];
        const c = compareOutputs(out.data, ref, out.shape);
        assert.ok(c.ok, `${p === 'unfused' ? 'unfused' : 'fused'}: max abs ${c.maxAbsError} (tolerance ${c.tolerance}), top-1 ${c.top1}`);
        assert.ok(c.cosine > 0.99999, `cosine ${c.cosine}`);
        outs.push(out.data);
      } finally {
        s.dispose();
      }
    }
    // Embeddings of two different faces differ: the output is not degenerate.
    const [a, b] = [outs[0].subarray(0, 192), outs[0].subarray(192)];
    assert.ok(a.some((v, i) => Math.abs(v - b[i]) > 1e-3));
  });
});
