// The FusePlanner reference's int8 Xception and ProxylessNAS-GPU, rebuilt by the fixture writer, give exactly the reference
// DAGs (test/planner/fuseplanner-reference/dags/xce_r.json, gprox_3.json) through tfliteDagFromFile.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tfliteDagFromFile } from '../../converters/tflite/dag.js';
import { importTflite } from '../../converters/tflite/import.js';
import { buildSeedProxylessGpu, buildSeedXception } from '../../fixtures/tflite-builder.js';

// The committed copy of the FusePlanner reference data (test/planner/fuseplanner-reference/README.md).
const referenceDir = join(process.cwd(), 'test', 'planner', 'fuseplanner-reference', 'dags');
const extensions = new Set(['pads', 'dilations']);

async function matchesReference(file: string, bytes: Uint8Array): Promise<Array<Record<string, unknown>>> {
  const reference = JSON.parse(readFileSync(join(referenceDir, file), 'utf8')) as Array<Record<string, unknown>>;
  const dag = (await tfliteDagFromFile(bytes, { source: file.replace('.json', '.tflite') })) as unknown as Array<Record<string, unknown>>;
  assert.equal(dag.length, reference.length);
  reference.forEach((want, i) => {
    const got = dag[i];
    for (const k of Object.keys(want)) assert.deepEqual(got[k], want[k], `layer ${i} (${String(want.name)}) field ${k}`);
    for (const k of Object.keys(got)) assert.ok(k in want || extensions.has(k), `layer ${i}: unexpected field ${k}`);
  });
  return dag;
}

describe('rebuilt FusePlanner reference models', () => {
  it('reproduces dags/xce_r.json field by field from the rebuilt int8 Xception', async () => {
    const dag = await matchesReference('xce_r.json', buildSeedXception());
    // fcm-opt's additions: VALID stem convs have no pads; the 1x1/2 SAME shortcut on 109 has none either.
    assert.deepEqual(dag[1].pads, [0, 0, 0, 0]);
    assert.deepEqual(dag[3].pads, [1, 1, 1, 1]);
    assert.equal(dag[103].type, undefined, 'the FC layer without bias keeps only its output quantization');
  });

  it('reproduces dags/gprox_3.json field by field from the rebuilt int8 ProxylessNAS-GPU', async () => {
    const dag = await matchesReference('gprox_3.json', buildSeedProxylessGpu());
    assert.deepEqual(dag[3].pads, [0, 0, 1, 1], 'SAME 3x3/2 on 224');
  });

  it('import into the IR with the recorded shapes and per-channel int8 weights', async () => {
    const g = await importTflite(buildSeedXception());
    const convs = g.nodes.filter((n) => n.op === 'Conv');
    assert.equal(convs.length, 74);
    assert.equal(convs.filter((n) => (n.attrs.group as number) > 1).length, 34);
    assert.deepEqual(g.tensors.get(g.outputs[0])!.shape, [1, 1000]);
    const p = await importTflite(buildSeedProxylessGpu());
    assert.equal(p.nodes.filter((n) => n.op === 'Conv' && (n.attrs.group as number) > 1).length, 14);
    assert.equal(p.nodes.filter((n) => n.op === 'Add').length, 7);
  });

  it('builds the same bytes for the same seed and different weights for another', () => {
    const a = buildSeedProxylessGpu(), b = buildSeedProxylessGpu(), c = buildSeedProxylessGpu(99);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });
});
