// The browser test's page: loads the bundle, runs each job's model with its plan on the page's navigator.gpu and
// posts every output back (test/browser/browser.test.ts compares them with the Node run).
import * as fcm from '/fcm-opt.mjs';

const post = (body) => fetch('/result', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
try {
  const job = await (await fetch('/job.json')).json();
  const adapter = await navigator.gpu.requestAdapter();
  const results = [];
  for (const j of job.models) {
    const bytes = await fcm.loadBytes(j.url);
    let session, fcms;
    if (j.optimized) {
      // An optimized .onnx: its fused nodes and plan are read back from the file; it runs as it is.
      const o = await fcm.readOptimized(bytes, { source: j.url });
      fcms = o.plan.modules.filter((m) => m.layers.length > 1).length;
      session = await fcm.createSession(o.graph, { plan: 'unfused' });
    } else {
      fcms = j.plan === 'unfused' ? 0 : j.plan.modules.filter((m) => m.layers.length > 1).length;
      session = await fcm.createSession(bytes, { plan: j.plan });
    }
    const feeds = {};
    session.inputNames.forEach((x, i) => {
      const n = session.inputShapes[x].reduce((a, b) => a * b, 1);
      feeds[x] = fcm.seededInput(n, i);
    });
    const out = await session.run(feeds);
    results.push({
      name: j.name, path: session.path, fcms,
      outputs: Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { shape: v.shape, data: Array.from(v.data) }])),
    });
    session.dispose();
  }
  await post({ ok: true, adapter: { vendor: adapter.info.vendor, architecture: adapter.info.architecture, description: adapter.info.description }, results });
} catch (e) {
  await post({ ok: false, error: String((e && e.stack) || e) });
}
