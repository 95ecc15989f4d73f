// Faithful mode against the FusePlanner reference on cases the three published DAGs do not reach: strided
// pointwise layers, filter counts that are not powers of two, 5x5 depthwise kernels, one SM or many, small L1 and
// shared memory. The expected estimates in fuseplanner-crafted/cases.json were computed by running the FusePlanner
// reference's Python unchanged (estimator_v2.estimate_dm and builder.to_fuse_or_not_to) on 120 seeded random layer chains
// and GPU descriptions: fuseplanner-crafted/generate.py, run by hand; these tests need no Python.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Dag } from '../../src/planner/dag.js';
import type { HwConfig } from '../../src/planner/hw-config.js';
import { buildEstimates } from '../../src/planner/fuseplanner/builder.js';
import { jsonDiff } from './json-diff.js';

interface Case { dag: Dag; hw: { sms: string; l1: string; shmem: string; warp_size: string }; estimates: Record<string, unknown> }
const cases: Case[] = JSON.parse(readFileSync(resolve('test/planner/fuseplanner-crafted/cases.json'), 'utf8'));

/** The FusePlanner reference's hw dict (KiB, strings) as our HwConfig. */
const hwOf = (h: Case['hw'], i: number): HwConfig => ({
  name: `crafted-${i}`, sms: Number(h.sms), l1BytesPerSm: Number(h.l1) * 1024, shmemBytesPerSm: Number(h.shmem) * 1024, warpSize: Number(h.warp_size),
});

test('the crafted cases reach strided PW layers, non-power-of-two filters, 5x5 kernels and fused and unfused pairs', () => {
  assert.equal(cases.length, 120);
  const layers = cases.flatMap((c) => c.dag);
  assert.ok(layers.some((l) => l.type === 'pw' && l.strides === 2));
  assert.ok(layers.some((l) => l.type === 'pw' && (l.weights_shape![0] & (l.weights_shape![0] - 1)) !== 0));
  assert.ok(layers.some((l) => l.type === 'dw' && l.weights_shape![2] === 5));
  for (const kind of ['pwdw', 'dwpw', 'pwpw']) {
    const sections = cases.map((c) => c.estimates[kind] as { candidates: object; fused: object });
    assert.ok(sections.some((s) => Object.keys(s.fused).length > 0), `${kind}: some fused`);
    assert.ok(sections.some((s) => Object.keys(s.candidates).length > Object.keys(s.fused).length), `${kind}: some refused`);
  }
});

cases.forEach((c, i) => {
  test(`fuseplanner estimates match the FusePlanner reference: crafted case ${i} (${c.dag.filter((l) => l.type).map((l) => `${l.type}/s${l.strides}`).join(' ')}; sms ${c.hw.sms}, l1 ${c.hw.l1} KiB, shmem ${c.hw.shmem} KiB)`, () => {
    const actual = JSON.parse(JSON.stringify(buildEstimates(c.dag, hwOf(c.hw, i)))) as Record<string, unknown>;
    assert.deepEqual(actual.hw, c.hw);
    delete actual.hw;
    const diff = jsonDiff(actual, c.estimates);
    assert.deepEqual(diff.slice(0, 20), [], `${diff.length} differences`);
  });
});
