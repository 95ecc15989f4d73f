// Sparse TFLite constants (SparsityParameters) are densified at import and DENSIFY becomes that constant:
// each seeded sparse fixture must import to exactly the weights of its dense twin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as flatbuffers from 'flatbuffers';
import { importTflite } from '../../converters/tflite/import.js';
import { Model, Uint8Vector } from '../../converters/tflite/schema_generated.js';
import { FcmError } from '../../src/errors.js';
import type { Graph } from '../../src/graph/ir.js';
import { sparse2dBlock, sparseBlockFc, sparseConv, sparseEncode } from '../../fixtures/tflite-sparse.js';
import { BuiltinOperator as Op, TensorType, TfliteBuilder, bytesOf, opt, ActivationFunctionType as Act, type SparsitySpec } from '../../fixtures/tflite-builder.js';

/** The constant weight of the graph's Conv or Gemm node. */
function weightOf(g: Graph): Float32Array {
  const n = g.nodes.find((x) => x.op === 'Conv' || x.op === 'Gemm');
  assert.ok(n, `a Conv or Gemm node among ${g.nodes.map((x) => x.op).join(', ')}`);
  const w = g.tensors.get(n.inputs[1])!;
  assert.ok(w.data, 'the weight is a constant');
  return w.data as Float32Array;
}

const fixtures = { sparseConv, sparseBlockFc, sparse2dBlock };

for (const [name, build] of Object.entries(fixtures)) {
  test(`${name}: the densified weights equal the dense twin's; no DENSIFY node is left`, async () => {
    const sparseFile = build(undefined, 'sparse'), denseFile = build(undefined, 'dense');
    const sparse = await importTflite(sparseFile);
    const dense = await importTflite(denseFile);
    assert.ok(!sparse.nodes.some((n) => n.op === 'DENSIFY' || n.op === 'Densify'), `ops: ${sparse.nodes.map((n) => n.op).join(', ')}`);
    const a = weightOf(sparse), b = weightOf(dense);
    assert.equal(a.length, b.length);
    assert.deepEqual(Array.from(a), Array.from(b));
    // The fixture is really sparse, and stored sparse.
    const zeros = Array.from(b).filter((v) => v === 0).length;
    assert.ok(zeros > b.length / 4 && zeros < b.length, `${zeros} of ${b.length} weights are 0`);
    const m = Model.getRootAsModel(new flatbuffers.ByteBuffer(sparseFile));
    const sg = m.subgraphs(0)!;
    const stored = Array.from({ length: sg.tensorsLength() }, (_, i) => sg.tensors(i)!).find((t) => t.sparsity())!;
    const elem = stored.type() === TensorType.FLOAT16 ? 2 : 4;
    assert.ok(m.buffers(stored.buffer())!.dataLength() < b.length * elem, 'the sparse tensor stores fewer values than its shape');
  });
}

test('sparseConv stores only the non-zero weights (the MediaPipe form: CSR over the last dimension)', () => {
  const dense = [0, 2, 0, 0, 3, 0, 0, 0, 0, 4, 5, 6];
  const { values, sparsity } = sparseEncode(dense, [3, 4], { traversalOrder: [0, 1], sparseLevels: [1], vector: 'uint8' });
  assert.deepEqual(values, [2, 3, 4, 5, 6]);
  assert.deepEqual(sparsity.levels, [{ dense: 3 }, { segments: [0, 1, 2, 5], indices: [1, 0, 1, 2, 3], vector: 'uint8', segmentsVector: undefined }]);
});

/** x [1, 4] -> FULLY_CONNECTED 3 units with weights [3, 4] stored sparse as given, through DENSIFY. */
function fcWith(values: number[], sparsity: SparsitySpec, densifyInput = true): Uint8Array {
  const b = new TfliteBuilder();
  const stored = b.tensor({ name: 'w_sparse', type: TensorType.FLOAT32, shape: [3, 4], data: bytesOf(Float32Array.from(values)), sparsity });
  const w = b.tensor({ name: 'w', type: TensorType.FLOAT32, shape: [3, 4] });
  const x = b.tensor({ name: 'x', type: TensorType.FLOAT32, shape: [1, 4] });
  const y = b.tensor({ name: 'y', type: TensorType.FLOAT32, shape: [1, 3] });
  b.op(Op.DENSIFY, [densifyInput ? stored : x], [w]);
  b.op(Op.FULLY_CONNECTED, [x, w, -1], [y], opt.fc(Act.NONE));
  b.inputs = [x];
  b.outputs = [y];
  return b.finish();
}

const csr = (segments: number[], indices: number[]): SparsitySpec => ({
  traversalOrder: [0, 1], levels: [{ dense: 3 }, { segments, indices, vector: 'uint8' }],
});

async function rejects(bytes: Uint8Array, kind: FcmError['kind'], pattern: RegExp): Promise<void> {
  await assert.rejects(importTflite(bytes), (e: unknown) => {
    assert.ok(e instanceof FcmError, String(e));
    assert.equal(e.kind, kind, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

test('a consistent hand-written sparse constant imports to its dense values', async () => {
  const g = await importTflite(fcWith([2, 3, 4, 5, 6], csr([0, 1, 2, 5], [1, 0, 1, 2, 3])));
  assert.deepEqual(Array.from(weightOf(g)), [0, 2, 0, 0, 3, 0, 0, 0, 0, 4, 5, 6]);
});

test('malformed sparsity is refused naming the tensor: indices out of range or not increasing, segments, counts', async () => {
  await rejects(fcWith([2, 3, 4, 5, 6], csr([0, 1, 2, 5], [1, 0, 1, 2, 4])), 'invalid', /tensor 0 'w_sparse': sparsity level 1: index 4 is outside its dimension of size 4/);
  await rejects(fcWith([2, 3, 4, 5, 6], csr([0, 1, 2, 5], [1, 0, 2, 1, 3])), 'invalid', /indices of position 2 do not increase \(2, then 1\)/);
  await rejects(fcWith([2, 3, 4, 5, 6], csr([0, 1, 2, 9], [1, 0, 1, 2, 3])), 'invalid', /segment \[2, 9\) of position 2 lies outside array_indices \(5 entries\)/);
  await rejects(fcWith([2, 3, 4, 5, 6], csr([0, 1, 2], [1, 0, 1, 2, 3])), 'invalid', /array_segments has 3 entries, position 2 needs 4/);
  await rejects(fcWith([2, 3, 4, 5], csr([0, 1, 2, 5], [1, 0, 1, 2, 3])), 'invalid', /buffer \d+ holds 16 bytes, but the 5 values its sparsity names need 20/);
  await rejects(fcWith([2, 3], { traversalOrder: [0, 1], levels: [{ dense: 2 }, { dense: 4 }] }), 'invalid', /sparsity level 0 has dense_size 2; dimension 0 gives 3/);
  await rejects(fcWith([2, 3], { traversalOrder: [1, 1], levels: [{ dense: 3 }, { dense: 4 }] }), 'invalid', /traversal_order \[1, 1\] must permute/);
  await rejects(fcWith([2, 3], { traversalOrder: [0], levels: [{ dense: 3 }] }), 'invalid', /traversal_order has 1 entries; a rank-2 tensor with 0 block dimensions needs 2/);
  await rejects(fcWith([2, 3, 4, 5, 6], csr([0, 1, 2, 5], [1, 0, 1, 2, 3]), false), 'unsupported', /operator 0 \(densify\): densifies 'x', which is not a constant/);
});

test('the verifier checks the sparsity tables structurally: an index vector running past the end is refused', async () => {
  const bytes = sparseConv(21, 'sparse');
  const m = Model.getRootAsModel(new flatbuffers.ByteBuffer(bytes));
  const sg = m.subgraphs(0)!;
  let tensor = -1;
  for (let i = 0; i < sg.tensorsLength(); i++) if (sg.tensors(i)!.sparsity()) tensor = i;
  const indices = sg.tensors(tensor)!.sparsity()!.dimMetadata(3)!.arrayIndices(new Uint8Vector()) as Uint8Vector;
  // The values vector's length word: table field 0 holds an offset to it.
  const bb = indices.bb!;
  const field = indices.bb_pos + bb.__offset(indices.bb_pos, 4);
  const vec = field + bb.readUint32(field);
  const bad = bytes.slice();
  new DataView(bad.buffer).setUint32(vec, 0x7fffffff, true);
  await rejects(bad, 'invalid', /not a valid TFLite file: field 0 of Uint8Vector of 2147483647 elements runs past the end of the file/);
});
