// The plan command through the CLI's main(): output, JSON structure, default command, exit codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cli } from './run-cli.js';
import { formatCount } from '../../src/planner/format.js';

const dags = resolve('test/planner/fuseplanner-reference/dags');
const estimates = resolve('test/planner/fuseplanner-reference/estimates');


test('plan --mode fuseplanner prints a table and totals', async () => {
  const r = await cli('plan', join(dags, 'mob_v1.json'), '--hw', 'gtx1660', '--mode', 'fuseplanner');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /plan for mob_v1\.json on gtx1660 \(mode fuseplanner\): 11 fused modules/);
  assert.match(r.out, /pwdw\s+3\+5\s+conv_2d \+ depthwise_conv_2d\s+32x112x112 -> 64x56x56/);
  assert.match(r.out, /saved [\d.]+M \(30\.5% of the model's conv GMA\)/);
  assert.match(r.out, /layers 3, 5, 6, 7, 8, 10, 11 are in two fused pairs/);
});

test('--json: plan structure, with the reference estimates in fuseplanner mode', async () => {
  const r = await cli('plan', join(dags, 'xce_r.json'), '--hw', 'orin', '--mode', 'fuseplanner', '--json');
  assert.equal(r.code, 0, r.err);
  const plan = JSON.parse(r.out);
  assert.deepEqual(Object.keys(plan).sort(), ['estimates', 'hw', 'mode', 'model', 'modules', 'totals']);
  assert.equal(plan.model, 'xce_r.json');
  assert.equal(plan.hw, 'orin');
  for (const m of plan.modules) {
    assert.ok(['pwdw', 'dwpw', 'pwpw', 'dw', 'pw', 's', 'fc'].includes(m.kind), m.kind);
    assert.ok(Array.isArray(m.layers) && typeof m.gma === 'number' && typeof m.gmaUnfused === 'number' && typeof m.tiles === 'object');
  }
  assert.deepEqual(plan.estimates, JSON.parse(readFileSync(join(estimates, 'xce_r__orin.json'), 'utf8')));
  const t = plan.totals;
  assert.ok(t.saved > 0 && Math.abs(t.gmaUnfused - t.saved - t.gma) < 1e-6 * t.gmaUnfused);
});

test('the default command: fcm-opt MODEL --hw CFG is the plan command', async () => {
  const a = await cli(join(dags, 'gprox_3.json'), '--hw', 'rtxa4000', '--mode', 'fuseplanner', '--json');
  const b = await cli('plan', join(dags, 'gprox_3.json'), '--hw', 'rtxa4000', '--mode', 'fuseplanner', '--json');
  assert.equal(a.code, 0, a.err);
  assert.equal(a.out, b.out);
  // Subcommand names are not shadowed: help for 'plan' is still reachable.
  const h = await cli('help', 'plan');
  assert.equal(h.code, 0);
});

test('exit codes: bad config 2, bad DAG 2, unknown file type 3, bad mode 2, an --hw without value 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-cli-'));
  const badCfg = join(dir, 'bad.cfg');
  writeFileSync(badCfg, 'SMs::22\nL1::96\nshmem::64\nwarp_size::32\nbogus::1\n');
  let r = await cli('plan', join(dags, 'mob_v1.json'), '--hw', badCfg, '--mode', 'fuseplanner');
  assert.equal(r.code, 2);
  assert.match(r.err, /^fcm-opt: .*bad\.cfg:5: unknown key 'bogus'/);
  assert.equal(r.err.trim().split('\n').length, 1, 'one line, no stack trace');
  assert.equal(r.out, '');

  const cyclic = JSON.parse(readFileSync(join(dags, 'mob_v1.json'), 'utf8'));
  cyclic[3].children.push(2);
  cyclic[2].parents.push(3);
  const cyc = join(dir, 'cyc.json');
  writeFileSync(cyc, JSON.stringify(cyclic));
  r = await cli('plan', cyc, '--hw', 'h100', '--mode', 'fuseplanner');
  assert.equal(r.code, 2);
  assert.match(r.err, /cyc\.json: layer [23] \(.*\): is on a cycle/);

  const dangling = JSON.parse(readFileSync(join(dags, 'mob_v1.json'), 'utf8'));
  dangling[5].children = [99];
  writeFileSync(cyc, JSON.stringify(dangling));
  r = await cli(cyc, '--hw', 'h100', '--mode', 'fuseplanner');
  assert.equal(r.code, 2);
  assert.match(r.err, /layer 5 .*children lists layer 99, which does not exist/);

  const txt = join(dir, 'model.txt');
  writeFileSync(txt, 'x');
  r = await cli('plan', txt, '--hw', 'h100');
  assert.equal(r.code, 3);

  r = await cli('plan', join(dags, 'mob_v1.json'), '--hw', 'h100', '--mode', 'best');
  assert.equal(r.code, 2);
  // Without --hw the plan is for this machine's adapter (test/cli/conventions.test.ts); --hw without a value is an error.
  r = await cli('plan', join(dags, 'mob_v1.json'), '--hw');
  assert.equal(r.code, 2);
  assert.match(r.err, /option '--hw <cfg>' argument missing/);
  r = await cli('plan', join(dags, 'mob_v1.json'), '--hw', 'h100', '--batch', '2');
  assert.equal(r.code, 2);
  assert.match(r.err, /--batch and --input-shape apply to models/);
});

test('a free-text line in a cfg warns on stderr and the plan still runs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-cli-'));
  const cfg = join(dir, 'orin.cfg');
  writeFileSync(cfg, 'SMs::16\nL1::192\nshmem::164\nJetson AGX Orin\nwarp_size::32\n');
  const r = await cli('plan', join(dags, 'mob_v1.json'), '--hw', cfg, '--mode', 'fuseplanner', '--json');
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /warning: .*orin\.cfg:4: skipped a line/);
  assert.deepEqual(JSON.parse(r.out).estimates, JSON.parse(readFileSync(join(estimates, 'mob_v1__orin.json'), 'utf8')));
});

test('the default mode is optimal: disjoint modules, no estimates', async () => {
  const r = await cli('plan', join(dags, 'mob_v1.json'), '--hw', 'h100', '--json');
  assert.equal(r.code, 0, r.err);
  const plan = JSON.parse(r.out);
  assert.equal(plan.mode, 'optimal');
  assert.equal(plan.estimates, undefined);
  const layers = plan.modules.flatMap((m: { layers: number[] }) => m.layers);
  assert.equal(new Set(layers).size, layers.length, 'each layer in one module');
  const text = await cli(join(dags, 'mob_v1.json'), '--hw', 'h100');
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, /plan for mob_v1\.json on h100 \(mode optimal\)/);
});

test('an ONNX model is planned through the converters (fixtures/bundled/mobilenetv2-slim.onnx)', async () => {
  const model = resolve('fixtures/bundled/mobilenetv2-slim.onnx');
  const r = await cli('plan', model, '--hw', 'h100', '--json');
  assert.equal(r.code, 0, r.err);
  const plan = JSON.parse(r.out);
  assert.equal(plan.model, 'mobilenetv2-slim.onnx');
  const fused = plan.modules.filter((m: { layers: number[] }) => m.layers.length === 2);
  assert.ok(fused.length > 0, 'some FCMs');
  assert.ok(fused.every((m: { nodes?: string[] }) => Array.isArray(m.nodes) && m.nodes.length >= 2), 'modules name their IR nodes');
  const f = await cli(model, '--hw', 'lavapipe', '--mode', 'fuseplanner', '--json');
  assert.equal(f.code, 0, f.err);
  assert.ok(JSON.parse(f.out).estimates.layer_by_layer);
});

test('--input-shape and --batch are parsed and checked', async () => {
  const { parseInputShape } = await import('../../src/cli/plan.js');
  // A null-prototype record: input names come from files and may be '__proto__'.
  assert.deepEqual({ ...parseInputShape('x=1x3x224x224') }, { x: [1, 3, 224, 224] });
  assert.deepEqual({ ...parseInputShape('x:1x3x640x640') }, { x: [1, 3, 640, 640] });
  assert.deepEqual({ ...parseInputShape('y=2,8', { x: [1] }) }, { x: [1], y: [2, 8] });
  assert.deepEqual(Object.getOwnPropertyDescriptor(parseInputShape('__proto__=1x2'), '__proto__')?.value, [1, 2]);
  assert.throws(() => parseInputShape('x=1x0'), /positive integers/);
  assert.throws(() => parseInputShape('1x3'), /expected NAME=D1xD2/);
  const r = await cli('plan', resolve('fixtures/bundled/mobilenetv2-slim.onnx'), '--hw', 'h100', '--batch', 'two');
  assert.equal(r.code, 2);
  assert.match(r.err, /--batch: expected a positive integer/);
});

test('--hw auto describes the WebGPU adapter (lavapipe in CI) and plans with it', async () => {
  const r = await cli(resolve('fixtures/bundled/mobilenetv2-slim.onnx'), '--hw', 'auto', '--json');
  assert.equal(r.code, 0, r.err);
  const plan = JSON.parse(r.out);
  assert.ok(typeof plan.hw === 'string' && plan.hw.length > 0);
  assert.ok(plan.modules.length > 0);
});

test('--tune: a layer DAG and fuseplanner mode are refused with exit codes, before any GPU work', async () => {
  let r = await cli('plan', join(dags, 'mob_v1.json'), '--hw', 'h100', '--tune');
  assert.equal(r.code, 2);
  assert.match(r.err, /--tune .*needs a model/);
  const model = resolve('fixtures/bundled/mobilenetv2-slim.onnx');
  r = await cli('plan', model, '--hw', 'h100', '--tune', '--mode', 'fuseplanner');
  assert.equal(r.code, 3);
  assert.match(r.err, /--mode optimal/);
});

test('-o reports what it wrote: size, FCMs, nodes, dispatches, GMA and estimated time, LBL against optimized', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-plan-o-'));
  const out = join(dir, 'opt.onnx');
  const r = await cli('plan', 'models/mobilenetv2-x0.35-c100.onnx', '--hw', 'h100', '-o', out, '--json');
  assert.equal(r.code, 0, r.err);
  const plan = JSON.parse(r.out) as { modules: { layers: number[] }[]; totals: { gma: number; gmaUnfused: number; timeUs: number } };
  const fcms = plan.modules.filter((m) => m.layers.length > 1).length;
  const mb = (readFileSync(out).length / 1e6).toFixed(2);
  assert.match(r.err, new RegExp(`^wrote .*opt\\.onnx \\(${mb.replace('.', '\\.')} MB, ${fcms} FCMs\\); the model as imported has \\d+ nodes`));
  const row = (name: string) => {
    const m = new RegExp(`^${name} +(\\S+) +(\\S+)$`, 'm').exec(r.err);
    assert.ok(m, `${name} row in ${r.err}`);
    return [m[1], m[2]];
  };
  const [nodesLbl, nodesOpt] = row('nodes').map(Number);
  const [dLbl, dOpt] = row('dispatches').map(Number);
  // Each FCM replaces two conv nodes (with their folded activations) by one node and two dispatches by one.
  assert.equal(nodesLbl - nodesOpt, fcms);
  assert.equal(dLbl - dOpt, fcms);
  assert.deepEqual(row('conv GMA \\(elements\\)'), [formatCount(plan.totals.gmaUnfused), formatCount(plan.totals.gma)]);
  assert.equal(row('est\\. conv time \\(us\\)')[1], plan.totals.timeUs.toFixed(1));
});

test('plan of an optimized model prints the plan recorded in it; -o, --dag and --tune of it are exit 3', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-plan-opt-'));
  const out = join(dir, 'opt.onnx');
  const first = await cli('plan', 'models/mobilenetv2-x0.35-c100.onnx', '--hw', 'h100', '-o', out, '--json', '-q');
  assert.equal(first.code, 0, first.err);
  const again = await cli('plan', out, '--hw', 'rtxa4000', '--json');
  assert.equal(again.code, 0, again.err);
  assert.deepEqual(JSON.parse(again.out), JSON.parse(first.out), 'the recorded plan, for h100, whatever --hw says');
  const text = await cli('plan', out, '--hw', 'h100');
  assert.equal(text.code, 0, text.err);
  const fcms = (JSON.parse(first.out) as { modules: { layers: number[] }[] }).modules.filter((m) => m.layers.length > 1).length;
  assert.match(text.out, new RegExp(`^.*opt\\.onnx is an optimized model with ${fcms} fused modules; the plan recorded in it \\(for h100\\)`));
  assert.match(text.out, new RegExp(`: ${fcms} fused modules \\(FCMs\\)`));
  for (const extra of [['-o', join(dir, 'again.onnx')], ['--dag', join(dir, 'd.json')], ['--tune']]) {
    const r = await cli('plan', out, '--hw', 'h100', ...extra);
    assert.equal(r.code, 3, `${extra[0]}: ${r.err}`);
    assert.match(r.err, /opt\.onnx: is an optimized model \(\d+ fused modules\): -o, --dag and --tune take the original model/);
  }
});
