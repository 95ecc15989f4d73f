// An oracle for the FCM cost models that shares none of their code: the GMA of a fused module for a tile choice
// is counted by walking its tiled loop nest on tiny shapes, element by element, and compared with cost.ts for
// every tile choice. The loop nest is the FCM's data flow (arXiv 2404.19331, the fused modules FusePlanner
// models): one workgroup per (filter tile, spatial tile of the module's output); it reads the first layer's input
// over the tile's halo (every channel it needs), both layers' weights for its filters, and writes its outputs;
// the intermediate stays on chip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DagLayer } from '../../src/planner/dag.js';
import { convSpec, gmaOf } from '../../src/planner/cost.js';

interface Geometry { k: number; s: number; p: number }

/** The input positions (rows x cols, in bounds) a DW of geometry `g` reads for outputs [r0, r1) x [c0, c1). */
function halo(g: Geometry | undefined, rows: [number, number], cols: [number, number], inH: number, inW: number): number {
  const seen = new Set<string>();
  for (let r = rows[0]; r < rows[1]; r++) {
    for (let c = cols[0]; c < cols[1]; c++) {
      if (!g) { seen.add(`${r},${c}`); continue; }
      for (let i = 0; i < g.k; i++) {
        for (let j = 0; j < g.k; j++) {
          const y = r * g.s - g.p + i, x = c * g.s - g.p + j;
          if (y >= 0 && y < inH && x >= 0 && x < inW) seen.add(`${y},${x}`);
        }
      }
    }
  }
  return seen.size;
}

/** Counts the elements a tiled FCM reads and writes in global memory. */
function simulate(kind: 'pwdw' | 'dwpw' | 'pwpw', C: number, M: number, F: number, H: number, g: Geometry | undefined, tf: number, th: number, tw: number): number {
  const outH = g ? Math.floor((H + 2 * g.p - g.k) / g.s) + 1 : H;
  const filters = kind === 'pwdw' ? M : F;
  let elements = 0;
  for (let f0 = 0; f0 < filters; f0 += tf) {
    const nf = Math.min(tf, filters - f0);
    for (let r0 = 0; r0 < outH; r0 += th) {
      for (let c0 = 0; c0 < outH; c0 += tw) {
        const rows: [number, number] = [r0, Math.min(r0 + th, outH)];
        const cols: [number, number] = [c0, Math.min(c0 + tw, outH)];
        const tile = (rows[1] - rows[0]) * (cols[1] - cols[0]);
        const inputs = halo(g, rows, cols, H, H);
        if (kind === 'pwdw') elements += C * inputs + nf * C + nf * g!.k * g!.k; // PW input (all C), PW and DW weights of nf channels
        if (kind === 'dwpw') elements += M * inputs + M * g!.k * g!.k + nf * M; // DW input and weights (all M channels), PW weights of nf filters
        if (kind === 'pwpw') elements += C * inputs + M * C + nf * M; // first PW's input and all its weights, second's of nf filters
        elements += nf * tile; // outputs
      }
    }
  }
  return elements;
}

const pw = (c: number, f: number, hw: number): DagLayer => ({ id: 0, name: 'pw', parents: [], children: [], activation: '0', type: 'pw', weights_shape: [f, c], ifms_shape: [c, hw, hw], ofms_shape: [f, hw, hw], strides: 1, pads: [0, 0, 0, 0], dilations: 1 });
const dw = (c: number, hw: number, g: Geometry): DagLayer => {
  const out = Math.floor((hw + 2 * g.p - g.k) / g.s) + 1;
  return { id: 1, name: 'dw', parents: [], children: [], activation: '0', type: 'dw', weights_shape: [c, g.k, g.k], ifms_shape: [c, hw, hw], ofms_shape: [c, out, out], strides: g.s, pads: [g.p, g.p, g.p, g.p], dilations: 1 };
};

const geometries: Geometry[] = [{ k: 3, s: 1, p: 1 }, { k: 3, s: 2, p: 1 }, { k: 3, s: 1, p: 0 }, { k: 3, s: 2, p: 0 }];
const [C, M, F] = [3, 5, 4];

test('GMA of PW-DW, DW-PW and PW-PW for every tile choice equals a count over the tiled loop nest', () => {
  let checked = 0;
  for (const H of [5, 6]) {
    for (const g of geometries) {
      const outH = Math.floor((H + 2 * g.p - g.k) / g.s) + 1;
      const cases = [
        { kind: 'pwdw' as const, layers: [pw(C, M, H), dw(M, H, g)], filters: M, geometry: g as Geometry | undefined, out: outH },
        { kind: 'dwpw' as const, layers: [dw(M, H, g), pw(M, F, outH)], filters: F, geometry: g as Geometry | undefined, out: outH },
      ];
      if (g === geometries[0]) cases.push({ kind: 'pwpw' as never, layers: [pw(C, M, H), pw(M, F, H)], filters: F, geometry: undefined, out: H });
      for (const c of cases) {
        const specs = c.layers.map((l) => convSpec(l, 'oracle'));
        for (let tf = 1; tf <= c.filters; tf++) {
          for (let th = 1; th <= c.out; th++) {
            for (let tw = 1; tw <= c.out; tw++) {
              const want = simulate(c.kind, c.kind === 'dwpw' ? 0 : C, M, F, c.kind === 'dwpw' ? H : H, c.geometry, tf, th, tw);
              assert.equal(gmaOf(c.kind, specs, tf, th, tw).gma, want, `${c.kind} H ${H} k${g.k} s${g.s} p${g.p}: tiles ${tf} x ${th} x ${tw}`);
              checked++;
            }
          }
        }
      }
    }
  }
  assert.ok(checked > 500, `${checked} tile choices`);
});

test('the loop-nest count itself, by hand on one case: DW-PW with two filter tiles re-reads the DW input and weights', () => {
  // DW 3x3 s1 p1 on 2 channels of 2x2, PW 2 -> 3 filters, one 2x2 spatial tile, tf = 2: two filter tiles.
  // Each reads the whole input (2 ch x 4) and the DW weights (2 x 9); PW weights 2x2 then 1x2; outputs 2x4 then 1x4.
  const want = (8 + 18 + 4 + 8) + (8 + 18 + 2 + 4);
  assert.equal(simulate('dwpw', 0, 2, 3, 2, { k: 3, s: 1, p: 1 }, 2, 2, 2), want);
  assert.equal(gmaOf('dwpw', [convSpec(dw(2, 2, { k: 3, s: 1, p: 1 }), 't'), convSpec(pw(2, 3, 2), 't')], 2, 2, 2).gma, want);
});
