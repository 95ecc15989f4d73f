import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeModel, encodeModel, maxNestingDepth, onnx, supportedIrVersion } from '../../converters/onnx/codec.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { mulberry32 } from '../../fixtures/ir-builder.js';
import { fixtureModels } from '../../fixtures/models.js';
import { assertFcm } from './onnx-helpers.js';

// Protobuf wire helpers to build bytes our encoder would refuse to write (deep nesting).
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 127) { out.push((n & 127) | 128); n >>>= 7; }
  out.push(n);
  return out;
}
const cat = (...parts: Uint8Array[]) => {
  const o = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let k = 0;
  for (const p of parts) { o.set(p, k); k += p.length; }
  return o;
};
const field = (id: number, bytes: Uint8Array) => cat(Uint8Array.from(varint((id << 3) | 2)), Uint8Array.from(varint(bytes.length)), bytes);

test('fixtures round-trip byte for byte through decode/encode', () => {
  for (const [name, make] of Object.entries(fixtureModels)) {
    const bytes = exportOnnx(make());
    const again = encodeModel(decodeModel(bytes, name));
    assert.deepEqual(Buffer.from(again), Buffer.from(bytes), name);
  }
});

test('raw_data decodes as a view of the input bytes (no copy)', () => {
  const bytes = Buffer.from(exportOnnx(fixtureModels.classifier_head()));
  const m = decodeModel(bytes, 'head.onnx');
  const raw = m.graph!.initializer.find((t) => t.rawData && t.rawData.length > 100)!.rawData!;
  assert.equal(raw.buffer, bytes.buffer);
});

test('fields of every kind in the schema survive a round trip, unknown fields too', () => {
  const model: onnx.ModelProto.$Properties = {
    irVersion: 11, producerName: 'p', opsetImport: [{ domain: '', version: 21 }, { domain: 'com.x', version: 2 }],
    metadataProps: [{ key: 'k', value: 'v' }],
    configuration: [{ name: 'cfg', numDevices: 2, device: ['a', 'b'] }],
    functions: [{ name: 'F', domain: 'com.x', overload: 'o', input: ['a'], output: ['b'], attributeProto: [{ name: 'alpha', type: 1, f: 0.5 }], node: [{ opType: 'Relu', input: ['a'], output: ['b'] }] }],
    graph: {
      name: 'g',
      node: [{
        opType: 'F', domain: 'com.x', overload: 'o', input: ['x'], output: ['y'],
        deviceConfigurations: [{ configurationId: 'cfg', pipelineStage: 1, shardingSpec: [{ tensorName: 'x', device: [0, 1], indexToDeviceGroupMap: [{ key: 0, value: [0, 1] }], shardedDim: [{ axis: 0, simpleSharding: [{ dimParam: 'N', numShards: 2 }] }] }] }],
        attribute: [{ name: 'tp', type: onnx.AttributeProto.AttributeType.TYPE_PROTO, tp: { optionalType: { elemType: { tensorType: { elemType: 1 } } } } }],
      }],
      input: [{ name: 'x', type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT4E2M1, shape: { dim: [{ dimParam: 'N', denotation: 'DATA_BATCH' }, { dimValue: 4 }] } } } }],
      output: [{ name: 'y', type: { sequenceType: { elemType: { mapType: { keyType: 7, valueType: { sparseTensorType: { elemType: 1 } } } } } } }],
      sparseInitializer: [{ dims: [4], values: { name: 's', dataType: 1, dims: [1], floatData: [1] }, indices: { dataType: 7, dims: [1], int64Data: [2] } }],
      quantizationAnnotation: [{ tensorName: 'x', quantParameterTensorNames: [{ key: 'SCALE_TENSOR', value: 's' }] }],
    },
    trainingInfo: [{ updateBinding: [{ key: 'a', value: 'b' }] }],
  };
  const bytes = encodeModel(model);
  // An unknown field (number 99, a string) as a newer schema might write it, appended to the model.
  const withUnknown = cat(bytes, field(99, Buffer.from('future')));
  const m = decodeModel(withUnknown, 'all.onnx');
  assert.equal(m.graph!.node[0].deviceConfigurations[0].shardingSpec[0].shardedDim[0].simpleSharding[0].dimParam, 'N');
  assert.equal(m.graph!.node[0].attribute[0].tp!.optionalType!.elemType!.tensorType!.elemType, 1);
  assert.equal(m.functions[0].attributeProto[0].f, 0.5);
  assert.deepEqual(Buffer.from(encodeModel(m)), Buffer.from(withUnknown));
});

test('empty file: invalid (exit 2), not an empty model', () => {
  assertFcm(() => decodeModel(new Uint8Array(0), 'empty.onnx'), 2, /^empty\.onnx: /, /not an ONNX model/, /empty/);
});

test('random bytes: one clear error naming the file', () => {
  const r = mulberry32(7);
  for (let k = 0; k < 20; k++) {
    const b = Uint8Array.from({ length: 64 + k * 13 }, () => Math.floor(r() * 256));
    assertFcm(() => decodeModel(b, 'random.bin'), 2, /^random\.bin: /, /ONNX model/);
  }
});

test('truncated model: invalid (exit 2)', () => {
  const bytes = exportOnnx(fixtureModels.squeeze_excite());
  for (const cut of [1, 10, bytes.length >> 1, bytes.length - 3]) {
    assertFcm(() => decodeModel(bytes.subarray(0, cut), 'cut.onnx'), 2, /^cut\.onnx: /, /ONNX model/);
  }
});

test('a valid protobuf that is not a model: invalid, names what is missing', () => {
  const tensor = onnx.TensorProto.encode({ name: 'w', dims: [2], dataType: 1, floatData: [1, 2] }).finish();
  assertFcm(() => decodeModel(tensor, 'tensor.pb'), 2, /^tensor\.pb: /, /not (a valid|an) ONNX model/);
  const noGraph = encodeModel({ irVersion: 8, opsetImport: [{ version: 17 }] });
  assertFcm(() => decodeModel(noGraph, 'nograph.onnx'), 2, /graph missing/);
  const noOpset = encodeModel({ irVersion: 8, graph: { name: 'g' } });
  assertFcm(() => decodeModel(noOpset, 'noopset.onnx'), 2, /opset_import missing/);
});

test('ir_version newer than the schema: unsupported (exit 3)', () => {
  const m = encodeModel({ irVersion: supportedIrVersion + 1, opsetImport: [{ version: 17 }], graph: { name: 'g' } });
  assertFcm(() => decodeModel(m, 'new.onnx'), 3, /^new\.onnx: /, new RegExp(`IR version ${supportedIrVersion + 1}`));
});

test('5,000 nested subgraphs: bounded during decode (exit 4), no stack overflow', () => {
  // GraphProto{node: NodeProto{op_type 'If', attribute: AttributeProto{name, type GRAPH, g: GraphProto{...}}}}
  let graph = new Uint8Array(0);
  const op = field(4, Buffer.from('If'));
  const attrHead = cat(field(1, Buffer.from('then_branch')), Uint8Array.from([...varint(20 << 3), 5]));
  for (let i = 0; i < 5000; i++) {
    const attr = cat(attrHead, field(6, graph));
    graph = field(1, cat(op, field(5, attr)));
  }
  const model = cat(Uint8Array.from([8, 8]), field(7, graph), field(8, cat(Uint8Array.from([16, 17]))));
  assertFcm(() => decodeModel(model, 'deep.onnx'), 4, /^deep\.onnx: /, new RegExp(`deeper than ${maxNestingDepth}`));
});
