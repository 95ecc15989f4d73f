// The plan's text table and JSON (src/planner/format.ts), on hand-built plans: what each column must show,
// the totals and notes under the table, the alignment, and that the JSON form reads back as the same Plan.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCount, formatPlan, formatTiles, planToJson, shortenMiddle, tableWidth } from '../../src/planner/format.js';
import type { Dag } from '../../src/planner/dag.js';
import type { Plan, PlanModule } from '../../src/planner/plan.js';

test('formatCount: plain up to 9999, then K with one decimal, M and G with three', () => {
  assert.equal(formatCount(0), '0');
  assert.equal(formatCount(7), '7');
  assert.equal(formatCount(9999), '9999');
  assert.equal(formatCount(10000), '10.0K');
  assert.equal(formatCount(12400), '12.4K');
  assert.equal(formatCount(999_900), '999.9K');
  assert.equal(formatCount(1_000_000), '1.000M');
  assert.equal(formatCount(1_622_016), '1.622M');
  assert.equal(formatCount(999_500_000), '999.500M');
  assert.equal(formatCount(1e9), '1.000G');
  assert.equal(formatCount(2_345_000_000), '2.345G');
  // The FusePlanner reference's tiles are real-valued, so its GMA figures can be fractional: rounded.
  assert.equal(formatCount(2.4), '2');
  assert.equal(formatCount(2.6), '3');
  // Negative figures (a plan that adds GMA) take the unit of their magnitude.
  assert.equal(formatCount(-20000), '-20.0K');
  assert.equal(formatCount(-3_000_000), '-3.000M');
  assert.equal(formatCount(-4e9), '-4.000G');
  assert.equal(formatCount(-5), '-5');
});

test('formatTiles: HxW, depth, filters of both layers; fractions to two decimals without trailing zeros', () => {
  assert.equal(formatTiles({}), '-');
  assert.equal(formatTiles({ h: 4, w: 8 }), '4x8');
  assert.equal(formatTiles({ h: 4 }), '4x?');
  assert.equal(formatTiles({ w: 8 }), '?x8');
  assert.equal(formatTiles({ d: 16 }), 'd16');
  assert.equal(formatTiles({ l1Filters: 32 }), 'f32');
  assert.equal(formatTiles({ l2Filters: 64 }), 'f2=64');
  assert.equal(formatTiles({ h: 7, w: 7, d: 8, l1Filters: 32, l2Filters: 64 }), '7x7 d8 f32 f2=64');
  // The FusePlanner reference's real-valued tiles.
  assert.equal(formatTiles({ h: 2.5, w: 3.333, d: 2.05, l1Filters: 2.999 }), '2.5x3.33 d2.05 f3');
  assert.equal(formatTiles({ h: 10.001, w: 0.5 }), '10x0.5');
});

/** input -> pw 1 -> dw 2 -> pw 3 -> fc 4 */
const dag = [
  { id: 0, name: 'quantize', activation: '0', parents: [], children: [1], ifms_shape: [1, 8, 8, 4], ofms_shape: [1, 8, 8, 4] },
  { id: 1, name: 'conv_2d', activation: 'RELU6', parents: [0], children: [2], type: 'pw', weights_shape: [16, 4], ifms_shape: [4, 8, 8], ofms_shape: [16, 8, 8], strides: 1, nodes: ['Conv_1', 'Relu_1'] },
  { id: 2, name: 'depthwise_conv_2d', activation: 'RELU6', parents: [1], children: [3], type: 'dw', weights_shape: [16, 3, 3], ifms_shape: [16, 8, 8], ofms_shape: [16, 8, 8], strides: 1, nodes: [] },
  { id: 3, name: 'conv_2d', activation: '0', parents: [2], children: [4], type: 'pw', weights_shape: [4, 16], ifms_shape: [16, 8, 8], ofms_shape: [4, 8, 8], strides: 1 },
  { id: 4, name: 'fully_connected', activation: '0', parents: [3], children: [] },
] as unknown as Dag;

const pwdw: PlanModule = { kind: 'pwdw', layers: [1, 2], tiles: { h: 4, w: 4, l1Filters: 8 }, gma: 2000, gmaUnfused: 12400, timeUs: 3.24, timeUsUnfused: 5.02 };
const pw: PlanModule = { kind: 'pw', layers: [3], tiles: { d: 16, l1Filters: 4 }, gma: 1536, gmaUnfused: 1536, timeUs: 1.04 };
const fc: PlanModule = { kind: 'fc', layers: [4], tiles: {}, gma: 0, gmaUnfused: 0 };

function plan(modules: PlanModule[], totals: Partial<Plan['totals']> = {}, mode: Plan['mode'] = 'optimal'): Plan {
  return { model: 'tiny.json', hw: 'h100', mode, modules, totals: { gma: 3536, gmaUnfused: 13936, saved: 10400, savedPercent: (100 * 10400) / 13936, ...totals } };
}

test('formatPlan: one row per module with kind, layers, names, shapes, tiles, GMA, saving and time; totals and notes', () => {
  const text = formatPlan(plan([pwdw, pw, fc], { timeUs: 4.28, timeUsUnfused: 6.06 }), dag);
  // Columns: '#', the GMA figures and the saving right-aligned, the rest left-aligned, two spaces apart, no
  // trailing blanks. Names are a layer's IR nodes (joined by '+') where it lists some, else its DAG name; a
  // module's layers are joined by ' + '. 'in -> out' is the first layer's input and the last one's output.
  // A lone layer has no saving; a module without an estimate (GMA 0 both ways) shows n/a; time is "fused (unfused)".
  const expected = [
    'plan for tiny.json on h100 (mode optimal): 1 fused module (FCMs), 2 layer-by-layer',
    '',
    '#  kind  layers  names                              in -> out        tiles   GMA LBL   GMA  saved  us (LBL)',
    '0  pwdw  1+2     Conv_1+Relu_1 + depthwise_conv_2d  4x8x8 -> 16x8x8  4x4 f8    12.4K  2000  10.4K  3.2 (5.0)',
    '1  pw    3       conv_2d                            16x8x8 -> 4x8x8  d16 f4     1536  1536         1.0 (1.0)',
    '2  fc    4       fully_connected                    ? -> ?           -           n/a   n/a',
    '',
    "conv GMA (elements): unfused 13.9K, planned 3536, saved 10.4K (74.6% of the model's conv GMA)",
    'estimated conv time: 4.3 us (unfused 6.1 us, 29.4% less)',
    'n/a: layers the cost model makes no estimate for (the FusePlanner reference estimates only DW and PW layers)',
    '',
  ].join('\n');
  assert.equal(text, expected);
});

test('formatPlan: no time column or time line without estimates; plural module count; no n/a note when all are estimated', () => {
  const strip = (m: PlanModule): PlanModule => ({ kind: m.kind, layers: m.layers, tiles: m.tiles, gma: m.gma, gmaUnfused: m.gmaUnfused });
  const pwpw: PlanModule = { kind: 'pwpw', layers: [3, 4], tiles: { l1Filters: 2, l2Filters: 3.5 }, gma: 900, gmaUnfused: 1000 };
  const text = formatPlan(plan([strip(pwdw), pwpw], { gma: 2900, gmaUnfused: 13400, saved: 10500, savedPercent: 78.358 }, 'fuseplanner'), dag);
  assert.equal(text, [
    'plan for tiny.json on h100 (mode fuseplanner): 2 fused modules (FCMs), 0 layer-by-layer',
    '',
    '#  kind  layers  names                              in -> out        tiles      GMA LBL   GMA  saved',
    '0  pwdw  1+2     Conv_1+Relu_1 + depthwise_conv_2d  4x8x8 -> 16x8x8  4x4 f8       12.4K  2000  10.4K',
    '1  pwpw  3+4     conv_2d + fully_connected          16x8x8 -> ?      f2 f2=3.5     1000   900    100',
    '',
    "conv GMA (elements): unfused 13.4K, planned 2900, saved 10.5K (78.4% of the model's conv GMA)",
    '',
  ].join('\n'));
});

test('formatPlan: n/a only when both GMA figures are zero; a zero-time total has no percentage', () => {
  // A module whose fused GMA is 0 but whose layers have an estimate is a figure, not "no estimate".
  const zeroFused: PlanModule = { kind: 'pwdw', layers: [1, 2], tiles: {}, gma: 0, gmaUnfused: 500, timeUs: 0 };
  const zeroLbl: PlanModule = { kind: 'pw', layers: [3], tiles: {}, gma: 300, gmaUnfused: 0 };
  const text = formatPlan(plan([zeroFused, zeroLbl], { gma: 300, gmaUnfused: 500, saved: 200, savedPercent: 40, timeUs: 0, timeUsUnfused: 0 }), dag);
  const rows = text.split('\n');
  assert.match(rows[3], /^0 {2}pwdw .* -  +500 {4}0 {4}500 {2}0\.0 \(0\.0\)$/);
  assert.match(rows[4], /^1 {2}pw .* -  +0 {2}300$/);
  assert.doesNotMatch(text, /n\/a/);
  assert.ok(text.includes('estimated conv time: 0.0 us (unfused 0.0 us)\n'), text);
  // Without an unfused total, the time line compares the total with itself.
  assert.ok(formatPlan(plan([pw], { timeUs: 2.5 }), dag).includes('estimated conv time: 2.5 us (unfused 2.5 us, 0.0% less)\n'));
});

test('formatPlan: wide index column right-aligned; layers shared by two pairs are noted (faithful mode)', () => {
  const many = Array.from({ length: 11 }, (_, i): PlanModule => ({ kind: 'pw', layers: [3], tiles: {}, gma: 10 * (i + 1), gmaUnfused: 10 * (i + 1) }));
  const rows = formatPlan(plan(many), dag).split('\n');
  assert.equal(rows[2].slice(0, 2), ' #');
  assert.ok(rows[3].startsWith(' 0  pw  '), rows[3]);
  assert.ok(rows[13].startsWith('10  pw  '), rows[13]);
  assert.ok(rows[3].endsWith('   10   10'), rows[3]);
  assert.ok(rows[13].endsWith('  110  110'), rows[13]);

  const note = 'note: layers 2, 5 are in two fused pairs: the FusePlanner reference decides PW-DW, DW-PW and PW-PW independently;'
    + ' their savings are counted per pair (use --mode optimal for disjoint modules)';
  const p = plan([pw], {}, 'fuseplanner');
  assert.equal(formatPlan(p, dag, { overlapping: [2, 5] }).split('\n').at(-2), note);
  assert.doesNotMatch(formatPlan(p, dag, { overlapping: [] }), /note:/);
  assert.doesNotMatch(formatPlan(p, dag), /note:/);
});

test('planToJson: the Plan itself, indented, one trailing newline; it reads back unchanged', () => {
  const p: Plan = { ...plan([pwdw, { ...pw, nodes: ['Conv_3'], tuned: { fusedUs: 1, lblUs: 2, variant: 'v' } }, fc], { timeUs: 4.28, timeUsUnfused: 6.06 }), estimates: { pwdw: { fused: { 1: 2 } } } };
  const json = planToJson(p);
  assert.deepEqual(JSON.parse(json), p);
  assert.ok(json.endsWith('}\n') && !json.endsWith('\n\n'));
  assert.ok(json.startsWith('{\n  "model": "tiny.json",\n  "hw": "h100",\n  "mode": "optimal",\n  "modules": [\n'), json.slice(0, 80));
});

test('formatPlan fits 120 columns: long names are cut in the middle (~), other columns stay whole; JSON keeps them', () => {
  const long = (i: number) => `model_1/model/block_${i}/depthwise_conv2d_with_a_very_long_exporter_name/BiasAdd;ReadVariableOp_${i}`;
  const wide = dag.map((l) => ({ ...l, nodes: [long(l.id)] }));
  const text = formatPlan(plan([pwdw, pw, fc], { timeUs: 4.28, timeUsUnfused: 6.06 }), wide);
  const rows = text.split('\n');
  for (const r of rows) assert.ok(r.length <= tableWidth, `${r.length}: ${r}`);
  assert.ok(rows.slice(3, 6).every((r) => /~/.test(r)), 'names shortened');
  assert.match(rows[3], /^0 {2}pwdw {2}1\+2 {5}model_1\/model\/block_1\S*~\S*_2 +4x8x8 -> 16x8x8 {2}4x4 f8 +12\.4K {2}2000 {2}10\.4K {2}3\.2 \(5\.0\)$/);
  assert.equal(shortenMiddle('abcdefghij', 5), 'ab~ij');
  assert.equal(shortenMiddle('abcdefghij', 6), 'abc~ij');
  assert.equal(shortenMiddle('abc', 5), 'abc');
});
