// `fcm-opt run --image FILE` (bin/fcm-opt.js in its own process): PNG and JPEG decoded by the pure-JS codecs,
// resized to the input's H x W (bilinear, half-pixel centres), normalised ((pixel * scale - mean) / std, default
// ImageNet on 0..1) and laid out as the input (NCHW, or NHWC). The models pass the input through unchanged (1x1
// identity convolution, a transpose) so the output is the input tensor; fixtures are seeded and encoded with the
// same codecs. Bad images: exit 2 (not an image, corrupt) or 3 (another image format), naming the file.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pngjs from 'pngjs';
import jpeg from 'jpeg-js';
import { encodeModel, onnx } from '../../converters/onnx/codec.js';
import { mulberry32 } from '../../fixtures/rng.js';
import { parseNpy } from '../../src/npy.js';
import { fcmOpt, ownLines, type CliResult } from './spawn-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'fcm-run-image-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const F = onnx.TensorProto.DataType.FLOAT;
const path = (name: string) => join(dir, name);

type Dim = number | string;
/** A one-input ONNX model x -> nodes -> y. */
function model(file: string, xShape: Dim[], nodes: { opType: string; input: string[]; output: string[]; attribute?: onnx.IAttributeProto[] }[], weights: Record<string, { dims: number[]; data: number[] }> = {}): string {
  writeFileSync(path(file), encodeModel({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'g',
      input: [{ name: 'x', type: { tensorType: { elemType: F, shape: { dim: xShape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: F } } }],
      initializer: Object.entries(weights).map(([name, w]) => ({ name, dims: w.dims, dataType: F, rawData: new Uint8Array(new Float32Array(w.data).buffer) })),
      node: nodes.map((n, i) => ({ name: `n${i}`, ...n })),
    },
  }));
  return path(file);
}
const eye3 = { w: { dims: [3, 3, 1, 1], data: [1, 0, 0, 0, 1, 0, 0, 0, 1] } };

/** Seeded RGBA pixels (alpha random too: it is dropped). */
function pixels(w: number, h: number, seed: number): Uint8Array {
  const r = mulberry32(seed);
  return Uint8Array.from({ length: w * h * 4 }, () => Math.floor(r() * 256));
}
const writePng = (file: string, w: number, h: number, data: Uint8Array) => { writeFileSync(path(file), pngjs.PNG.sync.write({ width: w, height: h, data })); return path(file); };
const writeJpeg = (file: string, w: number, h: number, data: Uint8Array) => { writeFileSync(path(file), jpeg.encode({ width: w, height: h, data }, 90).data); return path(file); };
const rgbAt = (data: Uint8Array, w: number, y: number, x: number, c: number) => data[(y * w + x) * 4 + c];

let nchw: string, nhwc: string, gray: string, gap: string, fixed1: string, flat: string;
const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];

before(() => {
  assert.ok(existsSync(resolve('dist/src/cli/main.js')), 'bin/fcm-opt.js runs the built CLI: npm run build first');
  nchw = model('nchw.onnx', ['N', 3, 8, 8], [{ opType: 'Conv', input: ['x', 'w'], output: ['y'] }], eye3);
  nhwc = model('nhwc.onnx', [1, 8, 8, 3], [{ opType: 'Transpose', input: ['x'], output: ['y'], attribute: [{ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: [0, 3, 1, 2] }] }]);
  gray = model('gray.onnx', [1, 1, 8, 8], [{ opType: 'Conv', input: ['x', 'w'], output: ['y'] }], { w: { dims: [1, 1, 1, 1], data: [1] } });
  gap = model('gap.onnx', [1, 3, 8, 8], [{ opType: 'GlobalAveragePool', input: ['x'], output: ['p'] }, { opType: 'Flatten', input: ['p'], output: ['y'] }]);
  fixed1 = model('fixed1.onnx', [1, 3, 8, 8], [{ opType: 'Conv', input: ['x', 'w'], output: ['y'] }], eye3);
  flat = model('flat.onnx', [1, 12], [{ opType: 'Relu', input: ['x'], output: ['y'] }]);
});

async function runImage(args: string[]): Promise<{ r: CliResult; y: { shape: number[]; data: Float32Array } }> {
  const out = path(`y-${Math.random().toString(36).slice(2)}.npy`);
  const r = await fcmOpt(['run', ...args, '--unfused', '--hw', 'h100', '--output', out]);
  assert.equal(r.code, 0, r.err);
  return { r, y: parseNpy(new Uint8Array(readFileSync(out)), out) };
}

test('PNG at the input size, default normalisation (ImageNet mean/std on 0..1): NCHW values per pixel', async () => {
  const px = pixels(8, 8, 1);
  const { r, y } = await runImage([nchw, '--image', writePng('a.png', 8, 8, px)]);
  assert.match(r.out, /input 'x' \[1x3x8x8\]: .*a\.png \(PNG 8x8\)/);
  assert.deepEqual(y.shape, [1, 3, 8, 8]);
  for (let c = 0; c < 3; c++) for (let i = 0; i < 64; i++) {
    const want = (px[i * 4 + c] / 255 - mean[c]) / std[c];
    // One float32 rounding of a value under 3 in magnitude (ulp 2.4e-7); the identity convolution adds exact zeros.
    assert.ok(Math.abs(y.data[c * 64 + i] - want) <= 3e-7, `c ${c} i ${i}: ${y.data[c * 64 + i]} vs ${want}`);
  }
});

test('downscale 16x16 -> 8x8 with --mean 0 --std 1 --scale 1: each value is the mean of its 2x2 block (half-pixel bilinear)', async () => {
  const px = pixels(16, 16, 2);
  const { y } = await runImage([nchw, '--image', writePng('b.png', 16, 16, px), '--mean', '0', '--std', '1', '--scale', '1']);
  for (let c = 0; c < 3; c++) for (let oy = 0; oy < 8; oy++) for (let ox = 0; ox < 8; ox++) {
    const want = (rgbAt(px, 16, 2 * oy, 2 * ox, c) + rgbAt(px, 16, 2 * oy, 2 * ox + 1, c) + rgbAt(px, 16, 2 * oy + 1, 2 * ox, c) + rgbAt(px, 16, 2 * oy + 1, 2 * ox + 1, c)) / 4;
    // Halves and quarters of integers under 256: exact in float32.
    assert.equal(y.data[(c * 8 + oy) * 8 + ox], want, `c ${c} (${oy}, ${ox})`);
  }
});

test('upscale 4x4 -> 8x8: edges clamp, inner samples weigh 3/4 and 1/4 (raw 0..1 values: --mean 0 --std 1)', async () => {
  const px = pixels(4, 4, 3);
  const { y } = await runImage([nchw, '--image', writePng('c.png', 4, 4, px), '--mean', '0', '--std', '1']);
  // Output i samples the source at (i + 0.5) / 2 - 0.5: -0.25 (clamped to 0), 0.25, 0.75, ..., 3.25 (clamped to 3).
  const along = (i: number): [number, number, number] => {
    const s = Math.min(Math.max((i + 0.5) / 2 - 0.5, 0), 3);
    const i0 = Math.floor(s);
    return [i0, Math.min(i0 + 1, 3), s - i0];
  };
  for (let c = 0; c < 3; c++) for (let oy = 0; oy < 8; oy++) for (let ox = 0; ox < 8; ox++) {
    const [y0, y1, fy] = along(oy), [x0, x1, fx] = along(ox);
    const p = (yy: number, xx: number) => rgbAt(px, 4, yy, xx, c);
    const want = ((p(y0, x0) * (1 - fx) + p(y0, x1) * fx) * (1 - fy) + (p(y1, x0) * (1 - fx) + p(y1, x1) * fx) * fy) / 255;
    assert.ok(Math.abs(y.data[(c * 8 + oy) * 8 + ox] - want) <= 1e-7, `c ${c} (${oy}, ${ox}): ${y.data[(c * 8 + oy) * 8 + ox]} vs ${want}`);
  }
  // The corners are the source's corners exactly.
  assert.equal(y.data[0], Math.fround(px[0] / 255));
});

test('JPEG into an NHWC input (dim 3 is the channels): the same values as the decoded pixels, transposed by the model', async () => {
  const px = pixels(8, 8, 4);
  const file = writeJpeg('d.jpg', 8, 8, px);
  // The reference pixels: the same file decoded by the same codec (JPEG is lossy).
  const dec = jpeg.decode(readFileSync(file), { useTArray: true, formatAsRGBA: true });
  const { r, y } = await runImage([nhwc, '--image', file]);
  assert.match(r.out, /d\.jpg \(JPEG 8x8\)/);
  assert.deepEqual(y.shape, [1, 3, 8, 8]);
  for (let c = 0; c < 3; c++) for (let i = 0; i < 64; i++) {
    const want = (dec.data[i * 4 + c] / 255 - mean[c]) / std[c];
    assert.ok(Math.abs(y.data[c * 64 + i] - want) <= 3e-7, `c ${c} i ${i}`);
  }
});

test('a one-channel input takes luma (BT.601); two images fill a symbolic batch of 2 in order', async () => {
  const px = pixels(8, 8, 5);
  const { y } = await runImage([gray, '--image', writePng('e.png', 8, 8, px), '--mean', '0.5', '--std', '0.25']);
  for (let i = 0; i < 64; i++) {
    const want = ((0.299 * px[4 * i] + 0.587 * px[4 * i + 1] + 0.114 * px[4 * i + 2]) / 255 - 0.5) / 0.25;
    assert.ok(Math.abs(y.data[i] - want) <= 5e-7, `i ${i}`);
  }
  const a = pixels(8, 8, 6), b = pixels(8, 8, 7);
  const two = await runImage([nchw, '--image', writePng('f.png', 8, 8, a), '--image', writePng('g.png', 8, 8, b), '--mean', '0', '--std', '1', '--scale', '1']);
  assert.deepEqual(two.y.shape, [2, 3, 8, 8]);
  for (let c = 0; c < 3; c++) for (let i = 0; i < 64; i++) {
    assert.equal(two.y.data[c * 64 + i], a[i * 4 + c]);
    assert.equal(two.y.data[192 + c * 64 + i], b[i * 4 + c]);
  }
});

test('--image with --top K: a classifier-like model (channel means) ranks R > B > G', async () => {
  const r0 = mulberry32(8);
  // Red high, blue middle, green low, with seeded noise of +-10.
  const px = new Uint8Array(8 * 8 * 4);
  for (let i = 0; i < 64; i++) [200, 30, 120, 255].forEach((v, c) => { px[4 * i + c] = v + Math.floor(r0() * 21) - 10; });
  const r = await fcmOpt(['run', gap, '--image', writePng('h.png', 8, 8, px), '--mean', '0', '--std', '1', '--top', '3', '--unfused', '--hw', 'h100']);
  assert.equal(r.code, 0, r.err);
  const m = /top 3: (\d+) \(([\d.]+)\), (\d+) \(([\d.]+)\), (\d+) \(([\d.]+)\)/.exec(r.out);
  assert.ok(m, r.out);
  assert.deepEqual([m[1], m[3], m[5]], ['0', '2', '1']);
  const channelMean = (c: number) => Array.from({ length: 64 }, (_, i) => px[4 * i + c]).reduce((s, v) => s + v, 0) / 64 / 255;
  // Printed to 6 significant digits.
  for (const [k, c] of [[2, 0], [4, 2], [6, 1]]) assert.ok(Math.abs(Number(m[k]) - channelMean(c)) <= 5e-6, `${m[k]} vs ${channelMean(c)}`);
});

function assertFails(r: CliResult, code: number, message: RegExp): void {
  assert.equal(r.code, code, r.err);
  const lines = ownLines(r.err);
  assert.equal(lines.length, 1, r.err);
  assert.match(lines[0], message);
}

test('bad images: not an image, another format, corrupt PNG or JPEG, missing: exit 2 or 3 naming the file, nothing written', async () => {
  const png = pngjs.PNG.sync.write({ width: 8, height: 8, data: pixels(8, 8, 9) });
  const jpg = jpeg.encode({ width: 8, height: 8, data: pixels(8, 8, 10) }, 90).data;
  writeFileSync(path('text.png'), 'not an image at all\n');
  writeFileSync(path('anim.gif'), Buffer.concat([Buffer.from('GIF89a'), Buffer.alloc(40)]));
  writeFileSync(path('cut.png'), png.subarray(0, 60));
  writeFileSync(path('cut.jpg'), jpg.subarray(0, Math.floor(jpg.length / 2)));
  const out = path('never.npy');
  const run = (...args: string[]) => fcmOpt(['run', nchw, '--unfused', '--hw', 'h100', '--output', out, ...args]);
  assertFails(await run('--image', path('text.png')), 2, /text\.png: is not a PNG or JPEG image/);
  assertFails(await run('--image', path('anim.gif')), 3, /anim\.gif: GIF images are not supported; --image takes PNG or JPEG/);
  assertFails(await run('--image', path('cut.png')), 2, /cut\.png: corrupt PNG image: /);
  assertFails(await run('--image', path('cut.jpg')), 2, /cut\.jpg: corrupt JPEG image: /);
  assertFails(await run('--image', path('missing.png')), 2, /missing\.png: .*no such file/);
  assert.ok(!existsSync(out), 'no output written');
});

test('options that cannot apply: exit 2 naming the option or the input', async () => {
  const img = writePng('ok.png', 8, 8, pixels(8, 8, 11));
  const npy = path('x.npy');
  const { encodeNpy } = await import('../../src/npy.js');
  writeFileSync(npy, encodeNpy({ shape: [1, 3, 8, 8], data: new Float32Array(192) }));
  const run = (m: string, ...args: string[]) => fcmOpt(['run', m, '--unfused', '--hw', 'h100', ...args]);
  assertFails(await run(nchw, '--image', img, '--input', npy), 2, /--image: and --input both given/);
  assertFails(await run(nchw, '--input', npy, '--mean', '0'), 2, /--mean: normalises --image inputs; no --image is given/);
  assertFails(await run(nchw, '--image', img, '--mean', '0.1,0.2'), 2, /--mean: gives 2 values; the input has 3 channels \(give 1 or 3\)/);
  assertFails(await run(nchw, '--image', img, '--std', '0'), 2, /--std: expected positive numbers/);
  assertFails(await run(nchw, '--image', img, '--scale', '-1'), 2, /--scale: expected a positive number/);
  assertFails(await run(fixed1, '--image', img, '--image', img), 2, /fixed1\.onnx: input 'x': has a batch of 1; 2 images were given/);
  assertFails(await run(flat, '--image', img), 2, /flat\.onnx: input 'x': has shape \[1,12\]; --image feeds a rank-4 input with 1 or 3 channels/);
});
