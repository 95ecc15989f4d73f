// One test input per validation rule of src/planner/dag-load.ts: each breaks exactly that rule of an otherwise
// valid DAG, and the one-line error must name the file and the layer (and the field or value at fault). Where
// a rule has a bound, the bound itself is accepted. Expected output sizes are computed by hand from
// out = floor((in + pads - (k - 1) * dilation - 1) / stride) + 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FcmError } from '../../src/errors.js';
import { loadDag, maxDagDim, maxDagElements, validateDag } from '../../src/planner/dag-load.js';

type Layer = Record<string, unknown>;

/** input 0 -> conv 1 -> output 2; `conv` replaces or adds fields of layer 1 (a 3x3 depthwise conv, 16x8x8, stride 1). */
function block(conv: Layer = {}, input: Layer = {}): Layer[] {
  return [
    { id: 0, name: 'input', activation: '0', parents: [], children: [1], ifms_shape: [1, 8, 8, 16], ofms_shape: [1, 8, 8, 16], ...input },
    { id: 1, name: 'dw', activation: 'RELU6', parents: [0], children: [2], type: 'dw', weights_shape: [16, 3, 3], ifms_shape: [16, 8, 8], ofms_shape: [16, 8, 8], strides: 1, ...conv },
    { id: 2, name: 'output', activation: '0', parents: [1], children: [] },
  ];
}

const accepts = (data: unknown) => assert.equal(validateDag(data, 'm.json'), data);

function rejects(data: unknown, message: string | RegExp, exitCode = 2): void {
  assert.throws(() => validateDag(data, 'm.json'), (e: unknown) => {
    assert.ok(e instanceof FcmError, String(e));
    assert.equal(e.exitCode, exitCode, e.message);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

test('file: an unreadable path is named, with the reason (src/input-file.ts)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-dag-rules-'));
  assert.throws(() => loadDag(join(dir, 'none.json')), (e: unknown) => e instanceof FcmError && e.exitCode === 2 && e.message === `${join(dir, 'none.json')}: cannot read (ENOENT: no such file)`);
  assert.throws(() => loadDag(dir), (e: unknown) => e instanceof FcmError && e.exitCode === 2 && e.message === `${dir}: is a folder, not a regular file`);
});

test('a layer must be a JSON object', () => {
  for (const bad of [5, 'layer', null, [1, 2], true]) {
    const d: unknown[] = block();
    d[1] = bad;
    rejects(d, 'm.json: layer 1: is not a JSON object');
  }
});

test('id: an integer equal to the position', () => {
  rejects(block({ id: '1' }), "m.json: layer 1: field 'id' must be an integer");
  rejects(block({ id: 1.5 }), "m.json: layer 1: field 'id' must be an integer");
  rejects(block({ id: null }), "m.json: layer 1: field 'id' must be an integer");
});

test('activation: optional, a string when given', () => {
  rejects(block({ activation: 6 }), "m.json: layer 1 ('dw'): field 'activation' must be a string");
  rejects(block({ activation: null }), "m.json: layer 1 ('dw'): field 'activation' must be a string");
  const d = block();
  delete d[1].activation;
  accepts(d);
});

test('edges: ids from 0 to n-1 only', () => {
  rejects(block({ children: [2, 3] }), "m.json: layer 1 ('dw'): children lists layer 3, which does not exist (layers 0..2)");
  rejects(block({ parents: [0, -1] }), "m.json: layer 1 ('dw'): parents lists layer -1, which does not exist (layers 0..2)");
  rejects(block({ parents: [0.5] }), "m.json: layer 1 ('dw'): field 'parents' must be an array of layer ids");
});

test('shapes: integers, no dimension over maxDagDim, no more than maxDagElements elements (exit 4)', () => {
  assert.equal(maxDagDim, 2 ** 24);
  assert.equal(maxDagElements, 2 ** 31);
  // Layer 0 is not a conv: only these size rules apply to its shapes.
  accepts(block({}, { ifms_shape: [1, maxDagDim, 1, 1] }));
  rejects(block({}, { ifms_shape: [1, maxDagDim + 1, 1, 1] }), "m.json: layer 0 ('input'): 'ifms_shape' [1, 16777217, 1, 1] has a dimension over 16777216", 4);
  rejects(block({}, { ofms_shape: [maxDagDim + 1] }), /^m\.json: layer 0 \('input'\): 'ofms_shape' \[16777217\] has a dimension over/, 4);
  accepts(block({}, { ofms_shape: [1, 2 ** 16, 2 ** 15] }));
  rejects(block({}, { ofms_shape: [1, 2 ** 16, 2 ** 15 + 1] }), "m.json: layer 0 ('input'): 'ofms_shape' [1, 65536, 32769] has more than 2147483648 elements", 4);
  // The element count multiplies the dimensions (none over the limit on its own).
  rejects(block({}, { ifms_shape: [2 ** 11, 2 ** 11, 2 ** 10] }), /'ifms_shape' \[2048, 2048, 1024\] has more than/, 4);
  rejects(block({}, { weights_shape: [2 ** 20, 2 ** 12] }), /^m\.json: layer 0 \('input'\): 'weights_shape' \[1048576, 4096\] has more than/, 4);
  // A conv layer's weights are checked too.
  rejects(block({ weights_shape: [16, 3, maxDagDim + 1] }), /^m\.json: layer 1 \('dw'\): 'weights_shape' \[16, 3, 16777217\] has a dimension over/, 4);
  rejects(block({}, { ifms_shape: [1, 8.5, 8, 16] }), "m.json: layer 0 ('input'): field 'ifms_shape' must be an array of integers");
});

test('conv types: only s, dw, pw and fc are checked as convs; other types (avgpool) and untyped layers are not', () => {
  accepts(block({}, { type: 'avgpool' }));
  accepts(block({ type: 'avgpool', weights_shape: undefined, ifms_shape: [1, 8, 8, 16], ofms_shape: [1, 1, 1, 16] }));
  // fc needs its weights only: its shapes need not be [C, H, W], and it has no stride.
  accepts(block({ type: 'fc', weights_shape: [10, 1024], ifms_shape: [1, 1024], ofms_shape: [1, 10], strides: undefined }));
  rejects(block({ type: 'fc', weights_shape: [10, 1024, 1] }), "m.json: layer 1 ('dw'): 'fc' weights_shape must have 2 dimensions, got [10, 1024, 1]");
  rejects(block({ type: 'fc', weights_shape: [10, 0] }), "m.json: layer 1 ('dw'): weights_shape [10, 0] has a non-positive dimension");
  // Its shapes, where given, of positive sizes (an fc input [48, 8, 0] gave NaN totals).
  rejects(block({ type: 'fc', weights_shape: [10, 1024], ifms_shape: [48, 8, 0], ofms_shape: [1, 10], strides: undefined }), "m.json: layer 1 ('dw'): 'ifms_shape' of an fc layer must have positive sizes, got [48, 8, 0]");
  rejects(block({ type: 'fc', weights_shape: [10, 1024], ifms_shape: [1, 1024], ofms_shape: [], strides: undefined }), "m.json: layer 1 ('dw'): 'ofms_shape' of an fc layer must have positive sizes, got []");
  // s, dw and pw need their shapes and a stride.
  for (const [type, w] of [['s', [16, 16, 3, 3]], ['dw', [16, 3, 3]], ['pw', [16, 16]]] as const) {
    for (const f of ['ifms_shape', 'ofms_shape', 'strides']) {
      rejects(block({ type, weights_shape: w, [f]: undefined }), `m.json: layer 1 ('dw'): '${type}' layer is missing field '${f}'`);
    }
  }
});

test('weights: a non-positive dimension anywhere is refused', () => {
  rejects(block({ weights_shape: [16, 0, 3] }), "m.json: layer 1 ('dw'): weights_shape [16, 0, 3] has a non-positive dimension");
  rejects(block({ weights_shape: [16, 3, -3] }), "m.json: layer 1 ('dw'): weights_shape [16, 3, -3] has a non-positive dimension");
});

test('conv shapes: [C, H, W] with positive sizes', () => {
  rejects(block({ ifms_shape: [16, 0, 8] }), "m.json: layer 1 ('dw'): 'ifms_shape' of a conv layer must be [C, H, W] with positive sizes, got [16, 0, 8]");
  rejects(block({ ofms_shape: [16, 8, -8] }), "m.json: layer 1 ('dw'): 'ofms_shape' of a conv layer must be [C, H, W] with positive sizes, got [16, 8, -8]");
  rejects(block({ ofms_shape: [16, 1, 8, 8] }), /'ofms_shape' of a conv layer must be \[C, H, W\].*got \[16, 1, 8, 8\]$/);
  rejects(block({ strides: -1 }), "m.json: layer 1 ('dw'): field 'strides' must be a positive integer or [H, W] of positive integers");
  rejects(block({ strides: 1.5 }), "m.json: layer 1 ('dw'): field 'strides' must be a positive integer or [H, W] of positive integers");
});

test('channels: depthwise keeps C; pointwise and standard weights are [F, C(/group), ...]', () => {
  rejects(block({ ofms_shape: [8, 8, 8] }), "m.json: layer 1 ('dw'): depthwise weights [16, 3, 3] do not match 16 input / 8 output channels");
  rejects(block({ weights_shape: [8, 3, 3] }), "m.json: layer 1 ('dw'): depthwise weights [8, 3, 3] do not match 16 input / 16 output channels");
  const pw = { type: 'pw', weights_shape: [32, 16], ofms_shape: [32, 8, 8] };
  accepts(block(pw));
  rejects(block({ ...pw, weights_shape: [24, 16] }), "m.json: layer 1 ('dw'): weights [24, 16] do not match 16 input / 32 output channels");
  rejects(block({ ...pw, weights_shape: [32, 8] }), "m.json: layer 1 ('dw'): weights [32, 8] do not match 16 input / 32 output channels");
  const s = { type: 's', weights_shape: [32, 16, 3, 3], ofms_shape: [32, 8, 8] };
  accepts(block(s));
  accepts(block({ ...s, weights_shape: [32, 4, 3, 3] })); // 4 groups of 4 input channels
  rejects(block({ ...s, weights_shape: [32, 3, 3, 3] }), "m.json: layer 1 ('dw'): weights [32, 3, 3, 3] do not match 16 input / 32 output channels");
  rejects(block({ ...s, weights_shape: [24, 16, 3, 3] }), "m.json: layer 1 ('dw'): weights [24, 16, 3, 3] do not match 16 input / 32 output channels");
});

test('dilations: optional, a positive integer', () => {
  for (const d of [0, -1, 1.5, '2']) rejects(block({ dilations: d }), "m.json: layer 1 ('dw'): field 'dilations' must be a positive integer or [H, W] of positive integers");
  accepts(block({ dilations: 2 }));
});

test('pads: [top, left, bottom, right] of non-negative integers up to maxDagDim', () => {
  accepts(block({ pads: [1, 1, 1, 1] }));
  for (const pads of ['1', 1, [1, 1, 1], [1, 1, 1, 1, 1]]) rejects(block({ pads }), "m.json: layer 1 ('dw'): field 'pads' must be [top, left, bottom, right]");
  rejects(block({ pads: [-1, 1, 1, 1] }), "m.json: layer 1 ('dw'): padding [-1, 1, 1, 1] must be non-negative integers up to 16777216");
  rejects(block({ pads: [1, 1.5, 1, 1] }), "m.json: layer 1 ('dw'): padding [1, 1.5, 1, 1] must be non-negative integers up to 16777216");
  rejects(block({ pads: [1, 1, '1', 1] }), /padding \[1, 1, 1, 1\] must be non-negative integers/);
  rejects(block({ pads: [1, 1, 1, maxDagDim + 1] }), /padding \[1, 1, 1, 16777217\] must be/);
  // maxDagDim itself is allowed: 8 + 2^24 - 3 rows before the last output give 8 outputs at a stride just over 2^21.
  accepts(block({ pads: [maxDagDim, 1, 0, 1] }));
  // The padding_* fields are the same rule, each missing one 0.
  rejects(block({ padding_top: -1 }), /padding \[-1, 0, 0, 0\] must be non-negative integers/);
  rejects(block({ padding_right: 2.5 }), /padding \[0, 0, 0, 2\.5\] must be non-negative integers/);
});

test('with padding recorded, the output must follow exactly (recorded stride or another whole one)', () => {
  const p = { pads: [1, 1, 1, 1] }; // 8 + 2 - 2 - 1 = 7 rows and columns before the last output: stride s gives floor(7 / s) + 1
  for (const [h, w] of [[8, 8], [4, 4], [3, 3], [8, 4], [2, 8], [1, 1]]) accepts(block({ ...p, ofms_shape: [16, h, w] }));
  const msg = (o: string, pads: string, expected: string, s = 1, kernel = '3x3', d = 1) =>
    `m.json: layer 1 ('dw'): output [${o}] does not follow from input [8, 8], kernel ${kernel}, dilation ${d}, pads [${pads}] with stride ${s} (expected [${expected}]) or any other stride`;
  // 5, 6, 7 and more than 8 come from no stride.
  rejects(block({ ...p, ofms_shape: [16, 5, 8] }), msg('5, 8', '1, 1, 1, 1', '8, 8'));
  rejects(block({ ...p, ofms_shape: [16, 8, 6] }), msg('8, 6', '1, 1, 1, 1', '8, 8'));
  rejects(block({ ...p, ofms_shape: [16, 9, 9] }), msg('9, 9', '1, 1, 1, 1', '8, 8'));
  rejects(block({ ...p, strides: 2, ofms_shape: [16, 7, 4] }), msg('7, 4', '1, 1, 1, 1', '4, 4', 2));
  // Asymmetric padding: H gets 0 + 2, W gets 1 + 0; stride 1 gives [8, 7] (W: 6 before the last, so no 6 or 5).
  accepts(block({ pads: [0, 1, 2, 0], ofms_shape: [16, 8, 7] }));
  rejects(block({ pads: [0, 1, 2, 0], ofms_shape: [16, 8, 6] }), msg('8, 6', '0, 1, 2, 0', '8, 7'));
  // Dilation 2 widens the 3x3 kernel to 5x5: 8 + 2 - 4 - 1 = 5 before the last output, so 6 at stride 1.
  accepts(block({ ...p, dilations: 2, ofms_shape: [16, 6, 6] }));
  rejects(block({ ...p, dilations: 2, ofms_shape: [16, 6, 5] }), msg('6, 5', '1, 1, 1, 1', '6, 6', 1, '3x3', 2));
  // A 1x3 kernel: W loses 2, H nothing.
  const s = { type: 's', weights_shape: [16, 16, 1, 3], pads: [0, 0, 0, 0] };
  accepts(block({ ...s, ofms_shape: [16, 8, 6] }));
  rejects(block({ ...s, ofms_shape: [16, 8, 8] }), msg('8, 8', '0, 0, 0, 0', '8, 6', 1, '1x3'));
  // A kernel larger than the padded input gives no output at any stride.
  rejects(block({ weights_shape: [16, 5, 5], ifms_shape: [16, 2, 2], ofms_shape: [16, 1, 1], pads: [0, 0, 0, 0] }), /output \[1, 1\] does not follow from input \[2, 2\], kernel 5x5/);
});

test('each padding_* field alone switches to the exact rule; missing ones count as 0', () => {
  // Without padding recorded an 8x8 output of a 3x3 kernel is plausible (up to 10x10 with full padding) ...
  accepts(block({ ofms_shape: [16, 8, 8] }));
  // ... with any one padding field it is not: one axis gets at most 1 of the 2 rows it needs.
  for (const f of ['padding_top', 'padding_left', 'padding_bottom', 'padding_right']) {
    rejects(block({ [f]: 1 }), /^m\.json: layer 1 \('dw'\): output \[8, 8\] does not follow from input \[8, 8\]/);
  }
  accepts(block({ padding_top: 1, padding_left: 1, padding_bottom: 1, padding_right: 1 }));
  accepts(block({ padding_top: 2, padding_left: 2, ofms_shape: [16, 8, 8] }));
  rejects(block({ padding_top: 1, padding_right: 1, ofms_shape: [16, 9, 8] }), /pads \[1, 0, 0, 1\] with stride 1 \(expected \[7, 7\]\)/);
  // pads wins over the padding_* fields.
  accepts(block({ pads: [1, 1, 1, 1], padding_top: 0, padding_bottom: 0 }));
});

test('without padding recorded, the output may not exceed what full padding and the recorded stride give', () => {
  // 3x3, stride 1: padding up to 2 on each side gives at most 8 + 4 - 2 - 1 + 1 = 10.
  accepts(block({ ofms_shape: [16, 10, 10] }));
  const msg = (o: string, max: string, k = '3x3', s = 1, d = 1) =>
    `m.json: layer 1 ('dw'): output [${o}] is larger than input [8, 8] with kernel ${k}, stride ${s}, dilation ${d} and any padding up to the kernel can give ([${max}] at most)`;
  rejects(block({ ofms_shape: [16, 11, 10] }), msg('11, 10', '10, 10'));
  rejects(block({ ofms_shape: [16, 10, 11] }), msg('10, 11', '10, 10'));
  // Stride 2: floor(9 / 2) + 1 = 5.
  accepts(block({ strides: 2, ofms_shape: [16, 5, 5] }));
  rejects(block({ strides: 2, ofms_shape: [16, 6, 5] }), msg('6, 5', '5, 5', '3x3', 2));
  // Dilation 2: the kernel spans 5, padding up to 8 in all: 8 + 8 - 4 - 1 + 1 = 12.
  accepts(block({ dilations: 2, ofms_shape: [16, 12, 12] }));
  rejects(block({ dilations: 2, ofms_shape: [16, 13, 12] }), msg('13, 12', '12, 12', '3x3', 1, 2));
  // Pointwise: kernel 1, no padding to add: the output is at most the input.
  const pw = { type: 'pw', weights_shape: [16, 16] };
  accepts(block({ ...pw, ofms_shape: [16, 8, 8] }));
  rejects(block({ ...pw, ofms_shape: [16, 9, 8] }), msg('9, 8', '8, 8', '1x1'));
  // A standard conv's kernel is its weights' last two dimensions (1x5 here: W up to 8 + 8 - 4 - 1 + 1 = 12).
  accepts(block({ type: 's', weights_shape: [16, 16, 1, 5], ofms_shape: [16, 8, 12] }));
  rejects(block({ type: 's', weights_shape: [16, 16, 1, 5], ofms_shape: [16, 9, 12] }), msg('9, 12', '8, 12', '1x5'));
});

test('a cycle names a layer on it, also when a layer downstream of the cycle has the lowest id', () => {
  // 0 -> 2 <-> 3 -> 1: layer 1 is left unvisited too, but is not on the cycle.
  const d = [
    { id: 0, name: 'input', activation: '0', parents: [], children: [2] },
    { id: 1, name: 'after', activation: '0', parents: [3], children: [] },
    { id: 2, name: 'a', activation: '0', parents: [0, 3], children: [3] },
    { id: 3, name: 'b', activation: '0', parents: [2], children: [2, 1] },
  ];
  rejects(d, /^m\.json: layer (2 \('a'\)|3 \('b'\)): is on a cycle of parent\/child edges$/);
});

/** input 0 -> dw 1 -> pw 2 -> output 3; `pw` replaces or adds fields of layer 2 (16 -> 24 channels, 8x8). */
function pair(pw: Layer = {}, dw: Layer = {}): Layer[] {
  return [
    { id: 0, name: 'input', activation: '0', parents: [], children: [1], ifms_shape: [1, 8, 8, 16], ofms_shape: [1, 8, 8, 16] },
    { id: 1, name: 'dw', activation: 'RELU6', parents: [0], children: [2], type: 'dw', weights_shape: [16, 3, 3], ifms_shape: [16, 8, 8], ofms_shape: [16, 8, 8], strides: 1, pads: [1, 1, 1, 1], ...dw },
    { id: 2, name: 'pw', activation: '0', parents: [1], children: [3], type: 'pw', weights_shape: [24, 16], ifms_shape: [16, 8, 8], ofms_shape: [24, 8, 8], strides: 1, ...pw },
    { id: 3, name: 'output', activation: '0', parents: [2], children: [] },
  ];
}

test('conv edges: a conv layer reads exactly what its conv parent writes', () => {
  accepts(pair());
  // The fuzz input that made the fuseplanner total negative: a stride explains the child's input, its parent does not.
  rejects(pair({}, { ifms_shape: [16, 8, 46341], strides: 2, pads: [1, 1, 1, 1], ofms_shape: [16, 4, 4] }), /^m\.json: layer 2 \('pw'\): reads \[16, 8, 8\], but its parent layer 1 \('dw'\) writes \[16, 4, 4\]$/);
  rejects(pair({ ifms_shape: [16, 8, 9], ofms_shape: [24, 8, 9] }), "m.json: layer 2 ('pw'): reads [16, 8, 9], but its parent layer 1 ('dw') writes [16, 8, 8]");
  // A non-conv parent may change layout or size (the FusePlanner reference's reshapes and pads): not checked.
  accepts(pair({}, { ifms_shape: [16, 10, 10], pads: [0, 0, 0, 0] }));
  const viaPad = pair({}, { ifms_shape: [16, 10, 10], pads: [0, 0, 0, 0] });
  viaPad[0].ofms_shape = [1, 10, 10, 16];
  accepts(viaPad);
});

test('a pointwise layer has no padding: a padded 1x1 convolution writes a larger map and is a standard layer', () => {
  accepts(pair({ pads: [0, 0, 0, 0] }));
  rejects(pair({ pads: [1, 0, 1, 0], ofms_shape: [24, 10, 8] }), "m.json: layer 2 ('pw'): a pointwise layer has no padding, got [1, 0, 1, 0] (a padded 1x1 convolution is type 's')");
  accepts(pair({ type: 's', weights_shape: [24, 16, 1, 1], pads: [1, 0, 1, 0], ofms_shape: [24, 10, 8] }));
});

test('conv edges: a conv with a residual reads its input from one parent and its own output shape from the other', () => {
  const d = pair();
  // dw 1 -> pw 2 (16 -> 24 channels), and a standard conv's [24, 8, 8] output reaches pw 2 as its residual.
  const s: Layer = { id: 3, name: 's', activation: '0', parents: [0], children: [2], type: 's', weights_shape: [24, 16, 3, 3], ifms_shape: [16, 8, 8], ofms_shape: [24, 8, 8], strides: 1, pads: [1, 1, 1, 1] };
  const out: Layer = { id: 4, name: 'output', activation: '0', parents: [2], children: [] };
  d[0].children = [1, 3];
  d[2].parents = [1, 3];
  d[2].children = [4];
  accepts([d[0], d[1], d[2], s, out]);
  rejects([d[0], d[1], d[2], { ...s, ofms_shape: [24, 4, 4], strides: 2 }, out], "m.json: layer 2 ('pw'): reads [16, 8, 8], but its parent layer 3 ('s') writes [24, 4, 4]");
});
