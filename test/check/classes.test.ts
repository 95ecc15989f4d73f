// Classification outputs in check (src/check/check.ts, src/runtime/compare.ts): top-1 and top-5 per row along the
// class axis, fp16's near-tie rule per row, which outputs are classifications (a Softmax's, or named), `--classes`
// parsing and the report line. Pure arithmetic on plain arrays and graphs (no GPU).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareOutputs } from '../../src/runtime/compare.js';
import { classesLine, classificationOutputs } from '../../src/check/check.js';
import { classesArg } from '../../src/cli/check.js';
import { GraphBuilder } from '../../fixtures/ir-builder.js';

test('top-1 and top-5 per position along the class axis: a time step or a pixel is a row', () => {
  // [1, 3, 4]: three time steps of four classes (class axis -1); ours flips step 1's argmax (0.5 -> 0.2).
  const ref = [0.1, 0.7, 0.1, 0.1, 0.5, 0.2, 0.2, 0.1, 0.25, 0.25, 0.4, 0.1];
  const ours = [...ref];
  [ours[4], ours[5]] = [0.2, 0.5];
  const c = compareOutputs(ours, ref, [1, 3, 4], undefined, undefined, 'fp32', -1);
  assert.deepEqual([c.rows, c.classAxis, c.top1, c.ok], [3, 2, 2 / 3, false]);
  assert.equal(c.top5, 1, 'four classes: every row\'s top five are its four, in any order');
  // Without a class axis the output is one batch row: its argmax (index 1, 0.7) did not move, and top-1 misses the flip.
  const flat = compareOutputs(ours, ref, [1, 3, 4]);
  assert.deepEqual([flat.rows, flat.top1, flat.classAxis], [1, 1, undefined]);
  // Class axis 1 of [1, 2, 2, 2] (MTCNN's per-pixel face / no face, NCHW): classes 4 elements apart, four pixels.
  const pref = [0.9, 0.2, 0.6, 0.45, /* class 1: */ 0.1, 0.8, 0.4, 0.55];
  const pours = [0.9, 0.2, 0.6, 0.56, 0.1, 0.8, 0.4, 0.44];
  const p = compareOutputs(pours, pref, [1, 2, 2, 2], undefined, undefined, 'fp32', 1);
  assert.deepEqual([p.rows, p.classAxis, p.top1], [4, 1, 3 / 4], 'pixel 3 flips from class 1 to class 0');
  assert.equal(compareOutputs(pref, pref, [1, 2, 2, 2], undefined, undefined, 'fp32', 1).top1, 1);
  assert.throws(() => compareOutputs(pref, pref, [1, 2, 2, 2], undefined, undefined, 'fp32', 4), /class axis 4/);
});

test('fp16: a row whose argmax flips between values the reference holds within the tolerance is a near tie, counted apart', () => {
  // Max |reference| 1: the f16 tolerance is 3e-2. Row 0's two largest differ by 0.01 (a near tie), row 1's by 0.5.
  const ref = [1, 0.99, 0, 0, 0.1, 0.6];
  const tie = compareOutputs([0.99, 1, 0, 0, 0.1, 0.6], ref, [1, 2, 3], undefined, undefined, 'fp16', -1);
  assert.deepEqual([tie.top1, tie.top1Ties, tie.ok], [0.5, 1, true]);
  assert.match(classesLine(tie), /^top-1 DIFFERS \(1 of 2 rows; 1 a near tie within tolerance\), every row's top-5 set equal$/);
  // fp32 has no near-tie rule: the same flip fails.
  assert.equal(compareOutputs([0.99, 1, 0, 0, 0.1, 0.6], ref, [1, 2, 3], 3e-2, undefined, 'fp32', -1).ok, false);
  const same = compareOutputs(ref, ref, [1, 2, 3], undefined, undefined, 'fp16', -1);
  assert.equal(classesLine(same), 'top-1 equal (2 of 2 rows), every row\'s top-5 set equal');
  // Top-5 of ten classes: ours swaps the reference's fifth (index 5, 0.5) for its sixth (index 6, 0.4).
  const r10 = [0.9, 0.8, 0.7, 0.6, 0, 0.5, 0.4, 0, 0, 0];
  const o10 = [0.9, 0.8, 0.7, 0.6, 0, 0.39, 0.4, 0, 0, 0];
  const t5 = compareOutputs(o10, r10, [1, 10], undefined, undefined, 'fp16', -1);
  assert.deepEqual([t5.top1, t5.top5], [1, 4 / 5]);
  assert.equal(classesLine(t5), 'top-1 equal (1 of 1 row), top-5 sets 80.0% shared');
});

test('classificationOutputs: the outputs a Softmax makes (its axis), and those named with an axis; a name not compared is refused', () => {
  const b = new GraphBuilder('two-heads', 3);
  const x = b.input('x', [1, 4, 2, 2]);
  const probs = b.node('Softmax', [x], [1, 4, 2, 2], { axis: 1 });
  const logits = b.node('Relu', [x], [1, 4, 2, 2]);
  const g = b.build([probs, logits]);
  assert.deepEqual([...classificationOutputs(g, g.outputs)], [[probs, 1]]);
  assert.deepEqual([...classificationOutputs(g, g.outputs, { [logits]: -1 })], [[probs, 1], [logits, 3]]);
  // A Softmax whose output is not compared (a host op's input is compared instead) is no classification output.
  assert.deepEqual([...classificationOutputs(g, [logits])], []);
  assert.throws(() => classificationOutputs(g, g.outputs, { nope: -1 }), /--classes names 'nope', which is not an output compared/);
  assert.throws(() => classificationOutputs(g, g.outputs, { [logits]: 4 }), /axis 4 of output .* rank 4/);
});

test('--classes NAME or NAME@AXIS, repeatable; names may hold ":" and ","', () => {
  let m = classesArg('onet/prob1@1', {});
  m = classesArg('Identity:0', m);
  m = classesArg('{"1": "a", "2": "b"}@-1', m);
  assert.deepEqual(m, { 'onet/prob1': 1, 'Identity:0': -1, '{"1": "a", "2": "b"}': -1 });
});
