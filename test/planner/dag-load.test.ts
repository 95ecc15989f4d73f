import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FcmError } from '../../src/errors.js';
import { loadDag, validateDag } from '../../src/planner/dag-load.js';

const refDags = resolve('test/planner/fuseplanner-reference/dags');

/** input -> pw 1 -> dw 2 -> pw 3 -> add 4 (with input) */
function goodDag(): Record<string, unknown>[] {
  return [
    { id: 0, name: 'quantize', activation: '0', parents: [], children: [1, 4], ifms_shape: [1, 8, 8, 4], ofms_shape: [1, 8, 8, 4] },
    { id: 1, name: 'conv_2d', activation: 'RELU6', parents: [0], children: [2], type: 'pw', weights_shape: [16, 4], ifms_shape: [4, 8, 8], ofms_shape: [16, 8, 8], strides: 1 },
    { id: 2, name: 'depthwise_conv_2d', activation: 'RELU6', parents: [1], children: [3], type: 'dw', weights_shape: [16, 3, 3], ifms_shape: [16, 8, 8], ofms_shape: [16, 8, 8], strides: 1 },
    { id: 3, name: 'conv_2d', activation: '0', parents: [2], children: [4], type: 'pw', weights_shape: [4, 16], ifms_shape: [16, 8, 8], ofms_shape: [4, 8, 8], strides: 1 },
    { id: 4, name: 'add', activation: '0', parents: [0, 3], children: [], ifms_shape: [1, 8, 8, 4], ofms_shape: [1, 8, 8, 4] },
  ];
}

function rejects(data: unknown, pattern: RegExp): void {
  assert.throws(() => validateDag(data, 'm.json'), (e: unknown) => {
    assert.ok(e instanceof FcmError, String(e));
    assert.equal(e.exitCode, 2);
    assert.match(e.message, pattern);
    return true;
  });
}

test('the reference DAGs load (including non-conv types like avgpool and layers without shapes)', () => {
  for (const m of ['mob_v1', 'xce_r', 'gprox_3']) assert.ok(loadDag(join(refDags, `${m}.json`)).length > 30, m);
  assert.equal(validateDag(goodDag(), 'm.json').length, 5);
});

test('file errors: unreadable, not JSON, not an array', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-dag-'));
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '[{"id": 0,');
  assert.throws(() => loadDag(bad), /bad\.json: not valid JSON/);
  assert.throws(() => loadDag(join(dir, 'none.json')), /none\.json: cannot read \(ENOENT: no such file\)/);
  rejects({ layers: [] }, /^m\.json: a layer DAG must be a JSON array/);
  rejects([], /no layers/);
});

test('missing fields and wrong types name the layer', () => {
  const drop = (i: number, f: string) => { const d = goodDag(); delete d[i][f]; return d; };
  const set = (i: number, f: string, v: unknown) => { const d = goodDag(); d[i][f] = v; return d; };
  rejects(drop(2, 'id'), /^m\.json: layer 2: missing field 'id'/);
  rejects(drop(2, 'children'), /^m\.json: layer 2 \('depthwise_conv_2d'\): missing field 'children'/);
  rejects(drop(1, 'name'), /layer 1: missing field 'name'/);
  rejects(set(1, 'parents', '0'), /layer 1 \('conv_2d'\): field 'parents' must be an array of layer ids/);
  rejects(set(1, 'name', 7), /field 'name' must be a string/);
  rejects(drop(2, 'weights_shape'), /layer 2 .*'dw' layer is missing field 'weights_shape'/);
  rejects(drop(3, 'strides'), /layer 3 .*missing field 'strides'/);
  rejects(set(3, 'strides', 0), /'strides' must be a positive integer/);
  rejects(set(2, 'ifms_shape', [16, 8]), /'ifms_shape' of a conv layer must be \[C, H, W\]/);
  rejects(set(2, 'weights_shape', [16, 3]), /'dw' weights_shape must have 3 dimensions/);
  rejects(set(3, 'weights_shape', [4, 8]), /weights \[4, 8\] do not match 16 input/);
  rejects(set(1, 'ofms_shape', [1, 8, 'x']), /'ofms_shape' must be an array of integers/);
  rejects(set(0, 'type', 3), /field 'type' must be a string/);
});

test('ids equal positions; dangling and inconsistent edges; cycles', () => {
  rejects(set(2, 'id', 7), /layer 2: has id 7; ids must equal positions/);
  rejects(set(1, 'children', [2, 9]), /layer 1 \('conv_2d'\): children lists layer 9, which does not exist/);
  rejects(set(1, 'parents', [-1]), /parents lists layer -1/);
  rejects(set(1, 'children', [2, 3]), /layer 1 \('conv_2d'\): lists child 3, but layer 3 does not list it as a parent/);
  rejects(set(3, 'parents', [1, 2]), /layer 3 .*lists parent 1, but layer 1 does not list it as a child/);
  rejects(set(2, 'children', [3, 2]), /layer 2 .*lists itself in 'children'/);
  rejects(set(1, 'children', [2, 2]), /layer 1 \('conv_2d'\): lists child 2 twice, but layer 2 lists it as a parent once/);
  // A layer reading one tensor twice lists its parent twice, mirrored by the parent's children: accepted.
  const both = goodDag();
  both[1].children = [2, 2];
  both[2].parents = [1, 1];
  assert.doesNotThrow(() => validateDag(both, 'both.json'));
  // 1 -> 2 -> 3 -> 1
  const cyc = goodDag();
  cyc[3].children = [4, 1];
  cyc[1].parents = [0, 3];
  rejects(cyc, /layer [123] \('(conv_2d|depthwise_conv_2d)'\): is on a cycle/);

  function set(i: number, f: string, v: unknown) { const d = goodDag(); d[i][f] = v; return d; }
});
