// `check --load-plan` and `run --load-plan`: a plan saved by `plan --plan FILE` (a tuned one, in practice) is the plan
// that runs, so that what bench --load-plan timed can be checked and used. The graph each side runs is read through
// runCheck's transformGraph hook: the saved plan's FCMs are there, a plan emptied by hand leaves none.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from './run-cli.js';
import { buildMobileNetStyle } from '../../fixtures/tflite-builder.js';
import { runCheck } from '../../src/check/check.js';
import { loadPlan } from '../../src/planner/plan-load.js';
import { fcmDomain, type Graph } from '../../src/graph/ir.js';
import { releaseGpu } from '../../src/runtime/device.js';

after(releaseGpu);

const dir = mkdtempSync(join(tmpdir(), 'fcm-load-plan-'));
const model = join(dir, 'mobilenet-style.tflite');
writeFileSync(model, buildMobileNetStyle({ int8: false }));
const fcms = (g: Graph) => g.nodes.filter((n) => n.domain === fcmDomain && n.op.startsWith('Fused')).length;

test('check --load-plan runs the saved plan, and reports it as saved', async () => {
  const saved = join(dir, 'plan.json');
  const p = await cli('plan', model, '--hw', 'lavapipe', '--plan', saved);
  assert.equal(p.code, 0, p.err);
  const plan = loadPlan(saved);
  assert.ok(plan.modules.some((m) => ['pwdw', 'dwpw', 'pwpw'].includes(m.kind)), 'the fixture has an FCM to fuse');

  const r = await cli('check', model, '--hw', 'lavapipe', '--load-plan', saved, '--json');
  assert.equal(r.code, 0, r.err);
  const report = JSON.parse(r.out);
  assert.equal(report.plan, 'saved');
  assert.equal(report.ok, true);

  // The plan is what runs: its FCMs in the graph; emptied of modules, none (the layers run one by one).
  let graph: Graph | undefined;
  const seen = (g: Graph) => { graph = g; return g; };
  assert.equal((await runCheck(model, { hw: 'lavapipe', plan, transformGraph: seen })).ok, true);
  assert.equal(fcms(graph!), plan.modules.filter((m) => ['pwdw', 'dwpw', 'pwpw'].includes(m.kind)).length);
  const empty = { ...plan, modules: [] };
  const e = await runCheck(model, { hw: 'lavapipe', plan: empty, transformGraph: seen });
  assert.equal(e.ok, true);
  assert.equal(e.plan, 'saved');
  assert.equal(fcms(graph!), 0);
});

test('run --load-plan writes what the planned run writes; a plan of another graph and --unfused with it exit 2', async () => {
  const saved = join(dir, 'plan2.json');
  assert.equal((await cli('plan', model, '--hw', 'lavapipe', '--plan', saved)).code, 0);
  const a = join(dir, 'planned.npy'), b = join(dir, 'loaded.npy');
  assert.equal((await cli('run', model, '--hw', 'lavapipe', '--output', a)).code, 0);
  const r = await cli('run', model, '--hw', 'lavapipe', '--load-plan', saved, '--output', b);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(readFileSync(b), readFileSync(a), 'the saved plan is the plan the run makes: the same kernels, the same bytes');

  // A plan whose modules name nodes this graph does not have: one line naming the module, no output file.
  const stale = join(dir, 'stale.json');
  writeFileSync(stale, JSON.stringify({ modules: [{ kind: 'pwdw', layers: [1, 2], nodes: ['nope', 'nada'], tiles: {} }] }));
  const c = join(dir, 'stale.npy');
  const s = await cli('run', model, '--hw', 'lavapipe', '--load-plan', stale, '--output', c);
  assert.equal(s.code, 2);
  assert.match(s.err, /^fcm-opt: .*plan module 0 \(pwdw, layers 1, 2\).*not in the graph: nope, nada/);
  assert.equal(s.err.trim().split('\n').length, 1);
  assert.equal(existsSync(c), false);
  const k = await cli('check', model, '--hw', 'lavapipe', '--load-plan', stale);
  assert.equal(k.code, 2);
  assert.match(k.err, /plan module 0/);

  for (const cmd of ['run', 'check']) {
    const u = await cli(cmd, model, '--hw', 'lavapipe', '--load-plan', saved, '--unfused');
    assert.equal(u.code, 2, cmd);
    assert.match(u.err, /^fcm-opt: --load-plan: .*--unfused/);
  }
  // Not JSON: exit 2 naming the file.
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{ modules');
  const j = await cli('check', model, '--hw', 'lavapipe', '--load-plan', bad);
  assert.equal(j.code, 2);
  assert.match(j.err, /bad\.json: not valid JSON/);
});
