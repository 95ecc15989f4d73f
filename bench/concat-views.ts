// Dispatches per run of models' float schedules with and without Concat and Pad blocks as views (src/runtime/views.ts),
// at the binding alignment a browser gives (256 bytes) and the one lavapipe gives (16): the fused plan on --hw, the
// executor's graph as createSession makes it (channel scales folded). The count without views is the count with them
// plus the copies they replaced. No GPU needed.
//
// Run: npx tsc -p tsconfig.json && node dist/bench/concat-views.js [--hw h100] MODEL...
// (timing the copies A/B on a GPU: the same session with FCM_OPT_VIEWS=0 in the environment runs every copy)

import { compileGraph } from '../src/runtime/compile.js';
import { defaultLimits } from '../kernels/program.js';
import { loadHw } from '../src/planner/hw.js';
import { prepareForRun } from '../src/pipeline/pipeline.js';
import { foldChannelScales } from '../src/rewrite/channel-scale.js';

async function main() {
  const args = process.argv.slice(2);
  const hi = args.indexOf('--hw');
  const hw = loadHw(hi >= 0 ? args[hi + 1] : 'h100');
  const models = hi >= 0 ? args.filter((_, i) => i !== hi && i !== hi + 1) : args;
  console.log('| model | without views | with views (256) | with views (16) |');
  console.log('|---|---:|---:|---:|');
  for (const m of models) {
    const g = foldChannelScales(await prepareForRun(m, { hw }));
    const count = (alignment: number) => {
      const c = compileGraph(g, { ...defaultLimits, maxStorageBufferBindingSize: 2 ** 30, maxBufferSize: 2 ** 31, minStorageBufferOffsetAlignment: alignment });
      return { steps: c.steps.length, dropped: c.copiesDropped ?? 0 };
    };
    const a = count(256), b = count(16);
    console.log(`| ${m} | ${a.steps + a.dropped} | ${a.steps} | ${b.steps} |`);
  }
}
main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
