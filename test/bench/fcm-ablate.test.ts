// bench/fcm-ablate.ts cuts phases out of the PW-DW kernel's WGSL at its comments: a kernel change that moves
// them must show here, not as a silently uncut "ablation" on the device.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cutDw, cutPw, touch } from '../../bench/fcm-ablate.js';
import { buildCase } from '../kernels/fused-check.js';

const limits = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256 };
const c = { kind: 'pwdw' as const, n: 1, c: 8, h: 16, w: 16, m: 16, k: 3, stride: 2, pads: [1, 1, 1, 1] as [number, number, number, number], bias1: true, bias2: true, tiles: { tileFilters1: 8, tileH: 4, tileW: 4 } };

test('fcm-ablate finds the pointwise and depthwise phases of the PW-DW kernel', () => {
  const w = buildCase(c, limits, { reference: false }).program.wgsl;
  const noPw = cutPw(w), noDw = cutDw(w);
  assert.ok(w.includes('wsT[(cl + 0u) * FB4') && !noPw.includes('wsT[(cl + 0u) * FB4'), 'pointwise FMAs removed');
  assert.ok(w.includes('out[o] = v;') && !noDw.includes('out[o] = v;'), 'depthwise phase removed');
  assert.match(touch(noDw), /out\[0\] = x\[0\] \+ w1\[0\] \+ b1\[0\] \+ w2\[0\] \+ b2\[0\]/);
});
