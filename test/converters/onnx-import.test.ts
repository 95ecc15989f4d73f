import assert from 'node:assert/strict';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { encodeModel, onnx } from '../../converters/onnx/codec.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { importOnnx, onnxNodeOf } from '../../converters/onnx/import.js';
import { fixtureModels, mobileNetV1Stack } from '../../fixtures/models.js';
import { assertFcmAsync } from './onnx-helpers.js';

const F = onnx.TensorProto.DataType.FLOAT;
const AT = onnx.AttributeProto.AttributeType;
const dir = mkdtempSync(join(tmpdir(), 'fcm-onnx-'));
after(() => rmSync(dir, { recursive: true, force: true }));

type NodeP = onnx.NodeProto.$Properties;
const vi = (name: string, dims: (number | string)[] | null = null, elemType = F): onnx.ValueInfoProto.$Properties => ({
  name,
  type: { tensorType: { elemType, ...(dims ? { shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } : {}) } },
});
const floats = (name: string, dims: number[], values?: number[]): onnx.TensorProto.$Properties => {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = Float32Array.from(values ?? Array.from({ length: n }, (_, i) => i / n));
  return { name, dims, dataType: F, rawData: new Uint8Array(data.buffer) };
};
const ints = (name: string, v: number[]) => ({ name, type: AT.INTS, ints: v });
const int = (name: string, v: number) => ({ name, type: AT.INT, i: v });

function model(g: Partial<onnx.GraphProto.$Properties>, opset = 17): Uint8Array {
  return encodeModel({
    irVersion: 8, opsetImport: [{ domain: '', version: opset }],
    graph: { name: 'g', input: [vi('x', [1, 4, 8, 8])], output: [vi('y')], ...g },
  });
}
const conv = (attrs: onnx.AttributeProto.$Properties[] = [], name = 'conv1'): NodeP =>
  ({ name, opType: 'Conv', input: ['x', 'w'], output: ['y'], attribute: [ints('kernel_shape', [3, 3]), ...attrs] });
const convModel = (attrs: onnx.AttributeProto.$Properties[] = [], w = floats('w', [8, 4, 3, 3])) => model({ node: [conv(attrs)], initializer: [w] });

// Float attributes are float32 in ONNX.
const f32 = (v: unknown): unknown => (typeof v === 'number' ? Math.fround(v) : Array.isArray(v) ? v.map(f32) : v);
const attrsF32 = (a: Record<string, unknown>) => Object.fromEntries(Object.entries(a).filter(([k]) => k !== 'value').map(([k, v]) => [k, f32(v)]));

test('every fixture imports, with the tensors, nodes and attrs of the graph it was built from (opsets 10, 17)', async () => {
  for (const opset of [10, 17]) {
    for (const [name, make] of Object.entries(fixtureModels)) {
      const g0 = make();
      const g = await importOnnx(exportOnnx(g0, { opset }), { source: `${name}.onnx` });
      const nodes0 = g0.nodes.filter((n) => n.op !== 'Constant');
      assert.equal(g.nodes.length, nodes0.length, name);
      assert.deepEqual(g.inputs, g0.inputs);
      assert.deepEqual(g.outputs, g0.outputs);
      for (const [i, n] of g.nodes.entries()) {
        const n0 = nodes0[i];
        assert.equal(n.op, n0.op);
        assert.ok(onnxNodeOf.get(n), 'NodeProto reachable');
        if (opset === 10) {
          // Opset 10 has the attribute forms: the canonical attrs come back exactly.
          assert.deepEqual(n.inputs, n0.inputs, `${name} ${n.name}`);
          assert.deepEqual(attrsF32(n.attrs), attrsF32(n0.attrs), `${name} ${n.name}`);
        } else {
          // Opset 17 moves Clip bounds and Unsqueeze axes into constant inputs.
          assert.deepEqual(n.inputs.slice(0, n0.inputs.length), n0.inputs, `${name} ${n.name}`);
          if (n.op === 'Conv') assert.deepEqual(attrsF32(n.attrs), attrsF32(n0.attrs), `${name} ${n.name}`);
        }
      }
      // Constants (initializers and Constant nodes) come back with the same values.
      for (const t0 of g0.tensors.values()) {
        const d0 = t0.data ?? (g0.nodes.find((n) => n.op === 'Constant' && n.outputs[0] === t0.name)?.attrs.value as { data?: unknown } | undefined)?.data;
        if (!d0) continue;
        const t = g.tensors.get(t0.name)!;
        assert.deepEqual(t.shape, t0.shape, t0.name);
        assert.deepEqual(t.data, d0, t0.name);
      }
    }
  }
});

test('Constant nodes become constant tensors', async () => {
  const g0 = mobileNetV1Stack();
  assert.ok(g0.nodes.some((n) => n.op === 'Constant'));
  const g = await importOnnx(exportOnnx(g0));
  assert.ok(!g.nodes.some((n) => n.op === 'Constant'));
  const conv0 = g.nodes.find((n) => n.op === 'Conv')!;
  assert.ok(g.tensors.get(conv0.inputs[1])!.data instanceof Float32Array);
});

test('initializers view the file bytes where aligned, float16 stays Uint16Array, int64 is BigInt64Array', async () => {
  const f16 = Uint16Array.of(0x3c00, 0x4000, 0xc000);
  const i64 = BigInt64Array.of(1n, -2n, 2n ** 62n);
  const bytes = model({
    node: [{ opType: 'Identity', input: ['x'], output: ['y'] }],
    initializer: [
      floats('w', [4, 4]),
      { name: 'h', dims: [3], dataType: onnx.TensorProto.DataType.FLOAT16, rawData: new Uint8Array(f16.buffer) },
      { name: 'h2', dims: [3], dataType: onnx.TensorProto.DataType.FLOAT16, int32Data: [...f16] },
      { name: 'l', dims: [3], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(i64.buffer) },
      { name: 'l2', dims: [3], dataType: onnx.TensorProto.DataType.INT64, int64Data: ['1', '-2', (2n ** 62n).toString()] as unknown as number[] },
      { name: 'f', dims: [2], dataType: F, floatData: [1.5, -2] },
    ],
  });
  const buf = Buffer.from(bytes);
  const g = await importOnnx(buf);
  const w = g.tensors.get('w')!.data!;
  assert.ok(w instanceof Float32Array);
  // Either a view of the file buffer (aligned) or a copy (unaligned): both must be right.
  if (w.buffer === buf.buffer) assert.equal((w.byteOffset - buf.byteOffset) % 4, 0);
  assert.deepEqual([...w].slice(0, 3), [0, 1 / 16, 2 / 16].map(Math.fround));
  for (const h of ['h', 'h2']) {
    const t = g.tensors.get(h)!;
    assert.equal(t.dtype, 'float16');
    assert.ok(t.data instanceof Uint16Array);
    assert.deepEqual([...t.data], [...f16]);
  }
  for (const l of ['l', 'l2']) assert.deepEqual(g.tensors.get(l)!.data, i64);
  assert.deepEqual(g.tensors.get('f')!.data, Float32Array.of(1.5, -2));
  // An aligned raw_data is never copied: find one and check it.
  const views = [...g.tensors.values()].filter((t) => t.data && t.data.buffer === buf.buffer);
  assert.ok(views.length > 0, 'at least one initializer is a view of the file');
});

test('old-opset attribute forms normalize to the same canonical attrs as the input forms', async () => {
  const clip10 = await importOnnx(model({ node: [{ opType: 'Clip', input: ['x'], output: ['y'], attribute: [{ name: 'min', type: AT.FLOAT, f: 0 }, { name: 'max', type: AT.FLOAT, f: 6 }] }] }, 10));
  assert.equal(clip10.nodes[0].attrs.min, 0);
  assert.equal(clip10.nodes[0].attrs.max, 6);
  const clip13 = await importOnnx(model({ node: [{ opType: 'Clip', input: ['x', 'lo', 'hi'], output: ['y'] }], initializer: [floats('lo', [], [0]), floats('hi', [], [6])] }, 13));
  assert.deepEqual(clip13.nodes[0].inputs, ['x', 'lo', 'hi']);
  assert.equal(clip13.nodes[0].attrs.min, undefined);

  const slice9 = await importOnnx(model({ node: [{ opType: 'Slice', input: ['x'], output: ['y'], attribute: [ints('starts', [1]), ints('ends', [3]), ints('axes', [1])] }] }, 9));
  assert.deepEqual({ ...slice9.nodes[0].attrs }, { starts: [1], ends: [3], axes: [1], steps: [1] });
  const pad9 = await importOnnx(model({ node: [{ opType: 'Pad', input: ['x'], output: ['y'], attribute: [ints('pads', [0, 0, 1, 1, 0, 0, 1, 1]), { name: 'mode', type: AT.STRING, s: Buffer.from('reflect') }] }] }, 9));
  assert.deepEqual({ ...pad9.nodes[0].attrs }, { mode: 'reflect', pads: [0, 0, 1, 1, 0, 0, 1, 1], value: 0 });
  const rm = await importOnnx(model({ node: [{ opType: 'ReduceMean', input: ['x'], output: ['y'], attribute: [ints('axes', [2, 3])] }] }, 11));
  assert.deepEqual({ ...rm.nodes[0].attrs }, { keepdims: 1, axes: [2, 3] });
  const sq = await importOnnx(model({ node: [{ opType: 'Squeeze', input: ['x'], output: ['y'], attribute: [ints('axes', [0])] }] }, 11));
  assert.deepEqual(sq.nodes[0].attrs.axes, [0]);
  const split = await importOnnx(model({ node: [{ opType: 'Split', input: ['x'], output: ['y', 'z'], attribute: [int('axis', 1), ints('split', [1, 3])] }], output: [vi('y'), vi('z')] }, 11));
  assert.deepEqual({ ...split.nodes[0].attrs }, { axis: 1, split: [1, 3] });
  // Softmax's default axis changed at opset 13.
  const sm11 = await importOnnx(model({ node: [{ opType: 'Softmax', input: ['x'], output: ['y'] }] }, 11));
  const sm13 = await importOnnx(model({ node: [{ opType: 'Softmax', input: ['x'], output: ['y'] }] }, 13));
  assert.equal(sm11.nodes[0].attrs.axis, 1);
  assert.equal(sm13.nodes[0].attrs.axis, -1);
});

test('Conv attrs: kernel from the weight, defaults, auto_pad kept', async () => {
  const g = await importOnnx(model({ node: [{ name: 'c', opType: 'Conv', input: ['x', 'w'], output: ['y'], attribute: [{ name: 'auto_pad', type: AT.STRING, s: Buffer.from('SAME_UPPER') }, ints('strides', [2, 2])] }], initializer: [floats('w', [8, 4, 3, 3])] }));
  assert.deepEqual({ ...g.nodes[0].attrs }, { kernel: [3, 3], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], autoPad: 'SAME_UPPER', group: 1 });
});

test('ops outside the list stay opaque with their raw attributes and domain', async () => {
  const g = await importOnnx(encodeModel({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }, { domain: 'com.custom', version: 1 }],
    graph: {
      name: 'g', input: [vi('x', [1, 4, 8, 8])], output: [vi('y')],
      node: [{ name: 'r', opType: 'Resize', domain: 'com.custom', input: ['x'], output: ['y'], attribute: [{ name: 'mode', type: AT.STRING, s: Buffer.from('linear') }, ints('sizes', [1, 2]), { name: 'scale', type: AT.FLOAT, f: 0.5 }] }],
    },
  }));
  const n = g.nodes[0];
  assert.equal(n.domain, 'com.custom');
  assert.deepEqual({ ...n.attrs }, { mode: 'linear', sizes: [1, 2], scale: 0.5 });
});

test('symbolic batch becomes opts.batch; other symbolic dims need inputShapes, with a clear error', async () => {
  const m = model({ input: [vi('img', ['N', 3, 'H', 'W'])], node: [{ opType: 'Relu', input: ['img'], output: ['y'] }] });
  await assertFcmAsync(() => importOnnx(m, { source: 'sym.onnx' }), 2, /^sym\.onnx: /, /'img'/, /H \(dim 2\), W \(dim 3\)/, /--input-shape img:\d+x3x\d+x\d+/);
  const g = await importOnnx(m, { inputShapes: { img: [2, 3, 64, 48] } });
  assert.deepEqual(g.tensors.get('img')!.shape, [2, 3, 64, 48]);
  const b = await importOnnx(model({ input: [vi('x', ['batch', 3, 8, 8])], node: [{ opType: 'Relu', input: ['x'], output: ['y'] }], output: [vi('y', ['batch', 3, 8, 8])] }), { batch: 4 });
  assert.deepEqual(b.tensors.get('x')!.shape, [4, 3, 8, 8]);
  assert.deepEqual(b.tensors.get('y')!.shape, [4, 3, 8, 8], 'value_info symbols resolved');
  await assertFcmAsync(() => importOnnx(m, { inputShapes: { image: [1, 3, 8, 8] } }), 2, /'image'/, /inputs: img/);
  await assertFcmAsync(() => importOnnx(m, { inputShapes: { img: [1, 4, 8, 8] } }), 2, /dim 1/);
});

test('a tensor and an attribute named __proto__ just work', async () => {
  const g = await importOnnx(encodeModel({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }, { domain: 'x.y', version: 1 }],
    graph: {
      name: 'g', input: [vi('__proto__', [1, 4])], output: [vi('constructor')],
      node: [
        { name: '__proto__', opType: 'Relu', input: ['__proto__'], output: ['hasOwnProperty'] },
        { name: 'n2', opType: 'Custom', domain: 'x.y', input: ['hasOwnProperty'], output: ['constructor'], attribute: [int('__proto__', 3)] },
      ],
    },
  }));
  assert.deepEqual(g.inputs, ['__proto__']);
  assert.equal(g.tensors.get('__proto__')!.shape[1], 4);
  assert.equal(g.nodes[1].attrs['__proto__'], 3);
  assert.equal(Object.getPrototypeOf(g.nodes[1].attrs), null);
});

test('bad graphs: undefined tensor, cycle, two writers, data length, weight shape, stride/dilation/group 0', async () => {
  const src = { source: 'bad.onnx' };
  await assertFcmAsync(() => importOnnx(model({ node: [{ name: 'n1', opType: 'Add', input: ['x', 'ghost'], output: ['y'] }] }), src), 2, /^bad\.onnx: /, /node 'n1'/, /'ghost'/);
  await assertFcmAsync(() => importOnnx(model({ node: [
    { name: 'a', opType: 'Add', input: ['x', 'c'], output: ['b'] },
    { name: 'b2', opType: 'Relu', input: ['b'], output: ['c'] },
    { name: 'out', opType: 'Relu', input: ['b'], output: ['y'] },
  ] }), src), 2, /cycle/, /'a'/);
  await assertFcmAsync(() => importOnnx(model({ node: [
    { name: 'first', opType: 'Relu', input: ['x'], output: ['y'] },
    { name: 'second', opType: 'Sigmoid', input: ['x'], output: ['y'] },
  ] }), src), 2, /node 'second'/, /'y'/, /node 'first'/);
  await assertFcmAsync(() => importOnnx(convModel([], { ...floats('w', [8, 4, 3, 3]), rawData: new Uint8Array(100) }), src), 2, /initializer 'w'/, /100 bytes/, /1152 bytes/);
  await assertFcmAsync(() => importOnnx(convModel([], { name: 'w', dims: [2, 2], dataType: F, floatData: [1, 2, 3] }), src), 2, /initializer 'w'/, /3 values/);
  await assertFcmAsync(() => importOnnx(convModel([], floats('w', [8, 3, 3, 3])), src), 2, /node 'conv1'/, /4 channels/, /has 3/);
  await assertFcmAsync(() => importOnnx(convModel([int('group', 3)], floats('w', [9, 1, 3, 3])), src), 2, /node 'conv1'/, /group 3/);
  await assertFcmAsync(() => importOnnx(convModel([ints('strides', [1, 0])]), src), 2, /node 'conv1'/, /stride 0/);
  await assertFcmAsync(() => importOnnx(convModel([ints('dilations', [0, 1])]), src), 2, /node 'conv1'/, /dilation 0/);
  await assertFcmAsync(() => importOnnx(convModel([int('group', 0)]), src), 2, /node 'conv1'/, /group 0/);
  await assertFcmAsync(() => importOnnx(model({ node: [{ name: 'r', opType: 'Relu', input: ['x'], output: ['z'] }] }), src), 2, /graph output 'y'/);
});

test('unsupported opsets and the memory budget', async () => {
  await assertFcmAsync(() => importOnnx(model({ node: [{ opType: 'Relu', input: ['x'], output: ['y'] }] }, 8)), 3, /opset 8/);
  await assertFcmAsync(() => importOnnx(model({ node: [{ opType: 'Relu', input: ['x'], output: ['y'] }] }, 22)), 3, /opset 22/);
  const big = convModel([], floats('w', [8, 4, 3, 3]));
  await assertFcmAsync(() => importOnnx(big, { maxMemory: 512, source: 'm.onnx' }), 4, /^m\.onnx: /, /budget/);
  await assertFcmAsync(() => importOnnx(model({ node: [{ opType: 'Relu', input: ['x'], output: ['y'] }], initializer: [{ name: 'huge', dims: [2 ** 30, 2 ** 30, 2 ** 30], dataType: F }] })), 4, /huge/);
});

test('external data: read inside the model folder only', async () => {
  const folder = join(dir, 'ext');
  mkdirSync(folder);
  const w = Float32Array.from({ length: 8 * 4 * 9 }, (_, i) => i);
  writeFileSync(join(folder, 'weights.bin'), Buffer.concat([Buffer.alloc(16), Buffer.from(w.buffer)]));
  const outside = join(dir, 'outside.bin');
  writeFileSync(outside, Buffer.from(w.buffer));
  symlinkSync(outside, join(folder, 'link.bin'));
  linkSync(outside, join(folder, 'hard.bin'));
  const ext = (location: string, offset = '16', length = String(w.byteLength)) => {
    const path = join(folder, `m-${Math.random().toString(36).slice(2)}.onnx`);
    writeFileSync(path, convModel([], {
      name: 'w', dims: [8, 4, 3, 3], dataType: F, dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [{ key: 'location', value: location }, { key: 'offset', value: offset }, { key: 'length', value: length }],
    }));
    return path;
  };
  const g = await importOnnx(ext('weights.bin'));
  assert.deepEqual(g.tensors.get('w')!.data, w);
  await assertFcmAsync(() => importOnnx(ext('../outside.bin', '0')), 2, /initializer 'w'/, /'\.\.'/);
  await assertFcmAsync(() => importOnnx(ext(outside, '0')), 2, /absolute/);
  await assertFcmAsync(() => importOnnx(ext('link.bin', '0')), 2, /symlink/);
  await assertFcmAsync(() => importOnnx(ext('hard.bin', '0')), 2, /hard link/);
  await assertFcmAsync(() => importOnnx(ext('weights.bin', '1000')), 2, /outside 'weights\.bin'/);
  await assertFcmAsync(() => importOnnx(ext('weights.bin', '0', '12')), 2, /12 bytes/);
  await assertFcmAsync(() => importOnnx(ext('missing.bin')), 2, /does not exist/);
  await assertFcmAsync(() => importOnnx(ext('.')), 2, /not a regular file|outside/);
});

test('operands: more than the ONNX schema takes is exit 2 (a 4th Conv input is no residual); trailing empty ones are absent', async () => {
  const src = { source: 'ops.onnx' };
  const w = floats('w', [8, 4, 3, 3]);
  const b = floats('b', [8]);
  // The IR reads a Conv's 4th input as its residual epilogue: from a file it must be refused, not added.
  await assertFcmAsync(() => importOnnx(model({ node: [{ ...conv(), input: ['x', 'w', 'b', 'b'] }], initializer: [w, b] }), src), 2,
    /^ops\.onnx: node 'conv1' \(Conv\) has 4 inputs; Conv takes at most 3$/);
  await assertFcmAsync(() => importOnnx(model({ node: [{ name: 'r', opType: 'Relu', input: ['x'], output: ['y', 'z'] }] }), src), 2,
    /node 'r' \(Relu\) has 2 outputs; Relu gives at most 1/);
  await assertFcmAsync(() => importOnnx(model({ node: [{ name: 'a', opType: 'Add', input: ['x', 'x', 'x'], output: ['y'] }] }), src), 2,
    /node 'a' \(Add\) has 3 inputs; Add takes at most 2/);
  // Optional operands left empty at the end count as absent; MaxPool's indices and Concat's inputs are allowed.
  const g = await importOnnx(model({ node: [{ ...conv(), input: ['x', 'w', '', ''] }], initializer: [w] }), src);
  assert.deepEqual(g.nodes[0].inputs.filter((x) => x), ['x', 'w']);
  await importOnnx(model({
    node: [
      { name: 'p', opType: 'MaxPool', input: ['x'], output: ['m', 'i'], attribute: [ints('kernel_shape', [2, 2])] },
      { name: 'c', opType: 'Concat', input: ['m', 'm', 'm', 'm'], output: ['y'], attribute: [int('axis', 1)] },
    ],
  }), src);
});

test('executor-only op names (SqueezeExcite, ChannelShuffle, PointwiseMean) in the default domain are exit 3; elsewhere opaque', async () => {
  const src = { source: 'se.onnx' };
  for (const op of ['SqueezeExcite', 'ChannelShuffle', 'PointwiseMean']) {
    await assertFcmAsync(() => importOnnx(model({ node: [{ name: 'n', opType: op, input: ['x'], output: ['y'] }] }), src), 3,
      new RegExp(`^se\\.onnx: node 'n' \\(${op}\\): '${op}' is no ONNX operator`));
  }
  const g = await importOnnx(encodeModel({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }, { domain: 'com.custom', version: 1 }],
    graph: { name: 'g', input: [vi('x', [1, 4, 8, 8])], output: [vi('y')], node: [{ name: 'n', opType: 'SqueezeExcite', domain: 'com.custom', input: ['x'], output: ['y'] }] },
  }), src);
  assert.equal(g.nodes[0].domain, 'com.custom');
});

test('node names: a repeated or generated-colliding name gets a suffix (names are the IR\'s keys); a node with no outputs is exit 2', async () => {
  const src = { source: 'names.onnx' };
  const relu = (name: string, input: string, output: string): NodeP => ({ name, opType: 'Relu', input: [input], output: [output] });
  // Two nodes named 'r', and an unnamed Relu at index 2 whose generated name 'Relu_2' a named node already holds.
  const g = await importOnnx(model({ node: [relu('r', 'x', 'a'), relu('r', 'a', 'b'), relu('', 'b', 'c'), relu('Relu_2', 'c', 'y')] }), src);
  assert.deepEqual(g.nodes.map((n) => n.name), ['r', 'r_1', 'Relu_2', 'Relu_2_1']);
  // The fuzz input: a Conv repeated under its name with its output dropped.
  await assertFcmAsync(() => importOnnx(model({ node: [relu('r', 'x', 'a'), { name: 'r', opType: 'Relu', input: ['a'], output: [] }, relu('s', 'a', 'y')] }), src), 2,
    /^names\.onnx: node 'r' \(Relu, node 1 of the graph; the name is repeated\) has no outputs$/);
  await assertFcmAsync(() => importOnnx(model({ node: [{ name: 'q', opType: 'Relu', input: ['x'], output: [''] }, relu('s', 'x', 'y')] }), src), 2,
    /^names\.onnx: node 'q' \(Relu\) has no outputs$/);
});
