// Short soak (bench/soak.ts): 300 runs on one session; GPU object counts constant, RSS flat after warm-up.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { soak, formatSoak } from '../../bench/soak.js';
import { releaseGpu } from '../../src/runtime/device.js';

after(releaseGpu);

test('300 runs on one session: buffer, bind group and pipeline counts constant; RSS bounded after warm-up', async () => {
  const r = await soak({ runs: 300, every: 100 });
  const msg = formatSoak(r);
  assert.equal(r.samples.length, 4, msg);
  for (const s of r.samples) {
    assert.equal(s.buffers, r.samples[0].buffers, msg);
    assert.equal(s.bindGroups, r.samples[0].bindGroups, msg);
    assert.equal(s.pipelines, r.samples[0].pipelines, msg);
  }
  assert.ok(r.stableOutput, 'the 300th run differs from the first');
  // The first ~100 runs grow V8's heap and lavapipe's thread arenas (2,000-run soak: +55 MiB, then flat
  // within 249-267 MiB). After that, GC sawtooth moves RSS by under 20 MiB; 32 MiB over the last 200 runs
  // is a leak of over 160 KiB per run; the buffer counts above are the exact check for GPU objects.
  const grown = Math.max(...r.samples.slice(2).map((s) => s.rssMiB)) - r.samples[1].rssMiB;
  assert.ok(grown <= 32, `RSS grew ${grown} MiB over runs 100-300\n${msg}`);
});
