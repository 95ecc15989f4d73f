// The report page: one self-contained HTML file (inline CSS and SVG, no script, no external resource) that
// draws the plan on the model's layer graph, the estimated GMA per module, and with a bench the measured
// latencies and per-module GPU time against the estimate. Every string that comes from a model, a DAG, a
// hardware description or a bench (names, ops, activations) goes through `esc`.
import type { Dag } from '../planner/dag.js';
import type { HwConfig } from '../planner/hw-config.js';
import type { Plan, PlanModule } from '../planner/plan.js';
import { formatCount, formatTiles } from '../planner/format.js';
import { fitText, fontSize, isFused, layerName, layoutGraph, moduleKindLabel, textWidth, type GraphLayout, type TextBox } from './layout.js';

/** Measurements of `fcm-opt bench` that the page shows (its BenchReport, reduced to what is drawn). */
export interface ReportBench {
  /** The device that ran it, as the bench names it. */
  device?: string;
  runs?: number;
  batch?: number;
  /** One per configuration, the fused plan first: fcm-opt fused and unfused, onnxruntime WebGPU and CPU. */
  results: Array<{ name: string; medianMs?: number; p90Ms?: number; unavailable?: string }>;
  /** Per plan module (index into plan.modules): estimates and GPU times (timestamp queries) of both runs. */
  modules: Array<{ module: number; gma?: number; gmaUnfused?: number; fusedGpuMs?: number; unfusedGpuMs?: number; estUs?: number }>;
  /** Why per-module GPU times are missing, when they are. */
  modulesUnavailable?: string;
  /** A note shown with the figures (e.g. that WebGPU ran on a CPU). */
  note?: string;
}

export interface ReportInput {
  dag: Dag;
  plan: Plan;
  hw?: HwConfig;
  bench?: ReportBench;
  /** Shown in the footer (the command line or tool version); plain text. */
  generator?: string;
}

const controlChars = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\ufffe\uffff]/g;

/** Text or attribute value for HTML/SVG: the five special characters as entities, control characters as U+FFFD. */
export function esc(value: unknown): string {
  return String(value)
    .replace(controlChars, '\ufffd')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** "12% less" or, for a module the planner fused for time rather than traffic, "3% more". */
const lessOrMore = (percent: number, digits: number) => `${Math.abs(percent).toFixed(digits)}% ${percent >= 0 ? 'less' : 'more'}`;
const num = (v: number) => (Number.isFinite(v) ? v : 0);
const fmtMs = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3));

export const kindColors: Record<'pwdw' | 'dwpw' | 'pwpw', string> = { pwdw: '#d1495b', dwpw: '#2e86ab', pwpw: '#8a5cc2' };
const layerFill: Record<string, string> = { s: '#e8eef7', dw: '#e3f4ea', pw: '#fdf3dc', fc: '#eeeeee', op: '#ffffff' };

const css = `
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0; color: #1d2433; background: #f6f7f9; }
header { background: #1d2433; color: #fff; padding: 14px 24px; }
header h1 { font-size: 19px; margin: 0 0 4px; font-weight: 600; overflow-wrap: anywhere; }
header p { margin: 0; color: #c7cede; }
main { padding: 16px 24px 32px; max-width: 1600px; }
.row { display: flex; flex-wrap: wrap; gap: 0 16px; align-items: flex-start; }
.row > section { flex: 1 1 420px; min-width: 0; }
.row > section#graph-section { flex: 0 1 auto; max-width: 100%; box-sizing: border-box; }
section { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding: 12px 16px; margin: 0 0 16px; }
h2 { font-size: 16px; margin: 0 0 8px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { border: 1px solid #dde1e8; border-radius: 6px; padding: 6px 12px; flex: 1 1 140px; }
.card b { display: block; font-size: 20px; }
.card span { color: #5a6475; font-size: 12px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: center; margin: 0 0 6px; font-size: 12px; }
.legend i { display: inline-block; width: 14px; height: 14px; border-radius: 3px; vertical-align: -2px; margin-right: 5px; border: 2px solid; }
.scroll { overflow: auto; max-height: 80vh; border: 1px solid #e4e7ec; border-radius: 4px; background: #fcfcfd; }
svg text { font-family: "DejaVu Sans Mono", Menlo, Consolas, "Liberation Mono", monospace; font-size: ${fontSize}px; fill: #1d2433; }
svg .name { font-weight: 600; }
svg .kind, svg .op { fill: #3b4557; }
svg .shape { fill: #5a6475; }
svg .flabel { font-weight: 700; }
svg .layer rect { stroke: #8792a6; stroke-width: 1; }
svg .layer.op rect { stroke-dasharray: 3 2; }
svg .layer:hover rect { stroke: #1d2433; stroke-width: 2; }
svg .frame:hover rect { stroke-width: 4; }
svg .edge { fill: none; stroke: #9aa3b2; stroke-width: 1.2; }
svg .edge.long { stroke: #b7bfcc; }
svg .axis { stroke: #8792a6; stroke-width: 1; }
svg .grid { stroke: #eceef2; stroke-width: 1; }
svg .muted { fill: #5a6475; }
.note { color: #5a6475; font-size: 13px; }
footer { color: #5a6475; font-size: 12px; padding: 0 24px 24px; }
`;

function textEl(t: TextBox): string {
  return `<text class="${esc(t.cls)}" x="${t.anchorEnd ? t.x + t.w : t.x}" y="${t.baseline}"${t.anchorEnd ? ' text-anchor="end"' : ''}>${esc(t.text)}</text>`;
}

function tilesAndGma(m: PlanModule): string[] {
  const noEstimate = m.gma === 0 && m.gmaUnfused === 0;
  const lines = [`tiles ${formatTiles(m.tiles)}`];
  lines.push(noEstimate ? 'estimated GMA: n/a (no cost model for this layer type)' : `estimated GMA ${formatCount(m.gma)} elements (unfused ${formatCount(m.gmaUnfused)})`);
  if (m.timeUs !== undefined) lines.push(`estimated time ${m.timeUs.toFixed(1)} us (unfused ${(m.timeUsUnfused ?? m.timeUs).toFixed(1)} us)`);
  return lines;
}

function graphSvg(dag: Dag, plan: Plan, layout: GraphLayout): string {
  const modulesOf = new Map<number, number[]>();
  plan.modules.forEach((m, i) => m.layers.forEach((l) => { if (!modulesOf.has(l)) modulesOf.set(l, []); modulesOf.get(l)!.push(i); }));
  const out: string[] = [];
  out.push(`<svg id="graph" xmlns="http://www.w3.org/2000/svg" width="${layout.width}" height="${layout.height}" viewBox="0 0 ${layout.width} ${layout.height}" role="img" aria-label="layer graph with fused modules">`);
  out.push('<defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z" fill="#9aa3b2"/></marker></defs>');
  for (const f of layout.frames) {
    const m = plan.modules[f.module];
    const color = kindColors[f.kind as keyof typeof kindColors];
    const title = [`module #${f.module}: ${moduleKindLabel[m.kind]} (fused), layers ${m.layers.join(' + ')}`,
      ...m.layers.map((l) => `  ${dag[l] ? layerName(dag[l]) : `layer ${l}`}`), ...tilesAndGma(m)];
    out.push(`<g class="frame" id="m${f.module}" data-fcm-frame="${f.module}" data-kind="${f.kind}" data-layers="${m.layers.join(' ')}"><title>${esc(title.join('\n'))}</title>`
      + f.rects.map((r) => `<rect x="${r.x}" y="${r.y}" width="${r.w}" height="${r.h}" rx="8" fill="${color}" fill-opacity="0.10" stroke="${color}" stroke-width="2.5"/>`).join('')
      + (f.connector ? `<path d="${f.connector}" fill="none" stroke="${color}" stroke-width="2" stroke-dasharray="6 4"/>` : '')
      + `<text class="flabel" x="${f.label.x + f.label.w}" y="${f.label.baseline}" text-anchor="end" style="fill:${color}">${esc(f.label.text)}</text></g>`);
  }
  for (const e of layout.edges) out.push(`<path class="edge${e.long ? ' long' : ''}" d="${e.d}" marker-end="url(#arrow)"/>`);
  for (const n of layout.nodes) {
    const mods = modulesOf.get(n.id) ?? [];
    const title = [...n.title];
    for (const i of mods) {
      const m = plan.modules[i];
      title.push(`${isFused(m.kind) ? 'in fused' : 'runs as'} module #${i} (${moduleKindLabel[m.kind]})`, ...tilesAndGma(m).map((t) => `  ${t}`));
    }
    out.push(`<g class="layer ${n.conv ? esc(n.kind) : 'op'}" data-layer="${n.id}"><title>${esc(title.join('\n'))}</title>`
      + `<rect x="${n.x}" y="${n.y}" width="${n.w}" height="${n.h}" rx="4" fill="${layerFill[n.kind] ?? '#ffffff'}"/>`
      + n.labels.map(textEl).join('') + '</g>');
  }
  out.push('</svg>');
  return out.join('\n');
}

function legend(plan: Plan): string {
  const fusedKinds: Array<keyof typeof kindColors> = ['pwdw', 'dwpw', 'pwpw'];
  const count = (k: string) => plan.modules.filter((m) => m.kind === k).length;
  const items = fusedKinds.map((k) => `<span><i style="border-color:${kindColors[k]};background:${kindColors[k]}1a"></i>${moduleKindLabel[k]} fused module (${count(k)})</span>`);
  const layerItems = [['s', 'standard conv'], ['dw', 'depthwise'], ['pw', 'pointwise'], ['fc', 'fully connected'], ['op', 'other op']]
    .map(([k, label]) => `<span><i style="border-color:#8792a6;background:${layerFill[k]}${k === 'op' ? ';border-style:dashed' : ''}"></i>${label}</span>`);
  return `<div class="legend">${items.join('')}</div><div class="legend">${layerItems.join('')}<span class="note">hover a layer or a frame for tiles and estimated GMA</span></div>`;
}

/** Horizontal bars, unfused vs fused estimated GMA for every module with an estimate, then the totals. */
function gmaChart(dag: Dag, plan: Plan): string {
  const rows = plan.modules.map((m, i) => ({ m, i })).filter(({ m }) => m.gma > 0 || m.gmaUnfused > 0);
  const labelW = textWidth('#0000 PW-DW 0000+0000') + 8;
  const barMax = 400;
  const rowH = 30;
  const top = 26;
  const max = Math.max(1, ...rows.map(({ m }) => Math.max(num(m.gma), num(m.gmaUnfused))));
  const w = labelW + barMax + 200;
  const totalsTop = top + rows.length * rowH + 14;
  const h = totalsTop + 2 * 20 + 30;
  const x = (v: number) => (barMax * num(v)) / max;
  const out: string[] = [`<svg id="gma-chart" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="estimated GMA per module">`];
  out.push(`<rect x="${labelW}" y="6" width="12" height="10" fill="#b7bfcc"/><text x="${labelW + 16}" y="15" class="muted">unfused (layer by layer)</text>`
    + `<rect x="${labelW + 200}" y="6" width="12" height="10" fill="#3b4557"/><text x="${labelW + 216}" y="15" class="muted">as planned (fused modules in their kind's colour)</text>`);
  rows.forEach(({ m, i }, r) => {
    const y = top + r * rowH;
    const color = isFused(m.kind) ? kindColors[m.kind as keyof typeof kindColors] : '#3b4557';
    const label = fitText(`#${i} ${moduleKindLabel[m.kind]} ${m.layers.join('+')}`, labelW - 8);
    const title = [`module #${i}: ${moduleKindLabel[m.kind]}`, ...m.layers.map((l) => `  ${dag[l] ? layerName(dag[l]) : `layer ${l}`}`), ...tilesAndGma(m)];
    const saved = m.gmaUnfused > 0 ? ` (${lessOrMore((100 * (m.gmaUnfused - m.gma)) / m.gmaUnfused, 0)})` : '';
    out.push(`<g data-gma-row="${i}"><title>${esc(title.join('\n'))}</title>`
      + `<text x="0" y="${y + 16}">${esc(label)}</text>`
      + `<rect x="${labelW}" y="${y + 2}" width="${x(m.gmaUnfused).toFixed(1)}" height="11" fill="#b7bfcc"/>`
      + `<rect x="${labelW}" y="${y + 14}" width="${x(m.gma).toFixed(1)}" height="11" fill="${color}"/>`
      + `<text class="muted" x="${labelW + Math.max(x(m.gmaUnfused), x(m.gma)) + 6}" y="${y + 17}">${esc(formatCount(m.gma))}${isFused(m.kind) ? esc(saved) : ''}</text></g>`);
  });
  const t = plan.totals;
  const tmax = Math.max(1, t.gmaUnfused, t.gma);
  const tx = (v: number) => (barMax * num(v)) / tmax;
  out.push(`<line class="axis" x1="0" x2="${w}" y1="${totalsTop - 6}" y2="${totalsTop - 6}"/>`);
  out.push(`<g data-gma-total="unfused"><text x="0" y="${totalsTop + 13}" font-weight="700">total unfused</text><rect x="${labelW}" y="${totalsTop + 2}" width="${tx(t.gmaUnfused).toFixed(1)}" height="14" fill="#b7bfcc"/>`
    + `<text class="muted" x="${labelW + tx(t.gmaUnfused) + 6}" y="${totalsTop + 13}">${esc(formatCount(t.gmaUnfused))}</text></g>`);
  out.push(`<g data-gma-total="planned"><text x="0" y="${totalsTop + 33}" font-weight="700">total planned</text><rect x="${labelW}" y="${totalsTop + 22}" width="${tx(t.gma).toFixed(1)}" height="14" fill="#3b4557"/>`
    + `<text class="muted" x="${labelW + tx(t.gma) + 6}" y="${totalsTop + 33}">${esc(formatCount(t.gma))} (${esc(lessOrMore(t.savedPercent, 1))})</text></g>`);
  out.push('</svg>');
  return out.join('\n');
}

function benchSection(plan: Plan, bench: ReportBench): string {
  const parts: string[] = ['<section id="bench"><h2>Measured</h2>'];
  const meta = [bench.device ? `device ${bench.device}` : '', bench.batch !== undefined ? `batch ${bench.batch}` : '', bench.runs !== undefined ? `${bench.runs} timed runs each: median bar, p90 whisker` : '']
    .filter((s) => s !== '').join(' · ');
  if (meta) parts.push(`<p class="note">${esc(meta)}</p>`);
  if (bench.note) parts.push(`<p class="note">${esc(bench.note)}</p>`);
  // Latency bars: median as the bar, p90 as a whisker; ratios to the fused plan (the first row).
  const labelW = textWidth('onnxruntime webgpu') + 12;
  const barMax = 460, rowH = 26;
  const timed = bench.results.filter((r) => r.medianMs !== undefined);
  const max = Math.max(1e-9, ...timed.map((r) => Math.max(num(r.medianMs!), num(r.p90Ms ?? r.medianMs!))));
  const ref = bench.results[0]?.medianMs;
  const w = labelW + barMax + 190, h = bench.results.length * rowH + 10;
  const sx = (v: number) => (barMax * num(v)) / max;
  parts.push(`<svg id="latency-chart" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="measured latency">`);
  bench.results.forEach((r, i) => {
    const y = 4 + i * rowH;
    const label = `<text x="0" y="${y + 14}">${esc(fitText(r.name, labelW - 10))}</text>`;
    if (r.medianMs === undefined) {
      parts.push(`<g data-latency="${i}"><title>${esc(`${r.name}: ${r.unavailable ?? 'no figures'}`)}</title>${label}`
        + `<text class="muted" x="${labelW}" y="${y + 14}">${esc(fitText(`unavailable: ${r.unavailable ?? 'no figures'}`, barMax + 180))}</text></g>`);
      return;
    }
    const p90 = r.p90Ms ?? r.medianMs;
    const ratio = ref && i > 0 ? ` (${(r.medianMs / ref).toFixed(2)}x fused)` : '';
    parts.push(`<g data-latency="${i}"><title>${esc(`${r.name}: median ${fmtMs(r.medianMs)} ms, p90 ${fmtMs(p90)} ms`)}</title>${label}`
      + `<rect x="${labelW}" y="${y + 3}" width="${sx(r.medianMs).toFixed(1)}" height="14" fill="${i === 0 ? kindColors.pwdw : '#8792a6'}"/>`
      + `<line class="axis" x1="${labelW + sx(r.medianMs)}" x2="${labelW + sx(p90)}" y1="${y + 10}" y2="${y + 10}"/><line class="axis" x1="${labelW + sx(p90)}" x2="${labelW + sx(p90)}" y1="${y + 5}" y2="${y + 15}"/>`
      + `<text class="muted" x="${labelW + sx(Math.max(r.medianMs, p90)) + 6}" y="${y + 14}">${esc(`${fmtMs(r.medianMs)} ms${ratio}`)}</text></g>`);
  });
  parts.push('</svg>');

  // Scatter: estimated GMA (x) against measured GPU time (y) of each module, as planned (fused modules in
  // their kind's colour) and run layer by layer (hollow): one point per module and run.
  interface Point { module: number; run: 'fused' | 'unfused'; gma: number; us: number }
  const pts: Point[] = [];
  for (const m of bench.modules) {
    const pm = plan.modules[m.module];
    if (!pm) continue;
    const gma = m.gma ?? pm.gma, gmaU = m.gmaUnfused ?? pm.gmaUnfused;
    if (m.fusedGpuMs !== undefined && Number.isFinite(m.fusedGpuMs) && gma > 0) pts.push({ module: m.module, run: 'fused', gma, us: m.fusedGpuMs * 1000 });
    if (m.unfusedGpuMs !== undefined && Number.isFinite(m.unfusedGpuMs) && gmaU > 0) pts.push({ module: m.module, run: 'unfused', gma: gmaU, us: m.unfusedGpuMs * 1000 });
  }
  parts.push('<h2>Per module: GPU time against the estimate</h2>');
  if (pts.length === 0) {
    parts.push(`<p class="note">No per-module GPU times${bench.modulesUnavailable ? `: ${esc(bench.modulesUnavailable)}` : ''}.</p>`);
  } else {
    const W = 600, H = 380, L = 70, B = 44, T = 30, R = 20;
    const xMax = Math.max(1, ...pts.map((p) => p.gma)) * 1.05, yMax = Math.max(1e-6, ...pts.map((p) => p.us)) * 1.05;
    const yScale = yMax >= 1e4 ? 1000 : 1; // axis in ms from 10 ms up
    const axisNum = (v: number) => (v >= 100 || v === 0 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
    const px = (v: number) => L + ((W - L - R) * v) / xMax, py = (v: number) => H - B - ((H - B - T) * v) / yMax;
    parts.push(`<svg id="module-scatter" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="GPU time against estimated GMA">`);
    parts.push(`<circle cx="${L + 6}" cy="12" r="4.5" fill="${kindColors.pwdw}"/><text x="${L + 16}" y="16" class="muted">as planned (colour: module kind)</text>`
      + `<circle cx="${L + 266}" cy="12" r="4.5" fill="none" stroke="#5a6475" stroke-width="1.5"/><text x="${L + 276}" y="16" class="muted">layer by layer</text>`);
    for (let k = 0; k <= 4; k++) {
      const gx = px((xMax * k) / 4), gy = py((yMax * k) / 4);
      parts.push(`<line class="grid" x1="${gx}" x2="${gx}" y1="${T}" y2="${H - B}"/><line class="grid" x1="${L}" x2="${W - R}" y1="${gy}" y2="${gy}"/>`
        + `<text class="muted" x="${gx}" y="${H - B + 14}" text-anchor="middle">${esc(formatCount((xMax * k) / 4))}</text>`
        + `<text class="muted" x="${L - 6}" y="${gy + 4}" text-anchor="end">${esc(axisNum((yMax * k) / 4 / yScale))}</text>`);
    }
    parts.push(`<line class="axis" x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}"/><line class="axis" x1="${L}" x2="${L}" y1="${T}" y2="${H - B}"/>`
      + `<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">estimated GMA (elements)</text>`
      + `<text x="14" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(T + H - B) / 2})">GPU time (${yScale === 1 ? 'us' : 'ms'})</text>`);
    for (const p of pts) {
      const m = plan.modules[p.module];
      const color = isFused(m.kind) ? kindColors[m.kind as keyof typeof kindColors] : '#3b4557';
      const est = p.run === 'fused' && m.timeUs !== undefined ? `, estimated ${m.timeUs.toFixed(1)} us` : p.run === 'unfused' && m.timeUsUnfused !== undefined ? `, estimated ${m.timeUsUnfused.toFixed(1)} us` : '';
      const paint = p.run === 'fused' ? `fill="${color}" fill-opacity="0.8"` : `fill="none" stroke="${color}" stroke-width="1.5"`;
      parts.push(`<circle data-scatter="${p.module}" data-run="${p.run}" cx="${px(p.gma).toFixed(1)}" cy="${py(p.us).toFixed(1)}" r="4.5" ${paint}>`
        + `<title>${esc(`module #${p.module} ${moduleKindLabel[m.kind]} ${p.run === 'fused' ? 'as planned' : 'layer by layer'}: ${formatCount(p.gma)} elements estimated, ${p.us.toFixed(1)} us measured${est}`)}</title></circle>`);
    }
    parts.push('</svg>');
  }
  parts.push('</section>');
  return parts.join('\n');
}

/** Summary cards for the plan's totals, its objective first: [value, label] pairs. */
export function headlineCards(t: Plan['totals']): string[][] {
  const gmaChange = t.saved >= 0
    ? [`${t.savedPercent.toFixed(1)}%`, `less GMA (${formatCount(t.saved)} elements saved)`]
    : [`+${(-t.savedPercent).toFixed(1)}%`, `GMA (${formatCount(-t.saved)} elements more: the time model accepts them for fewer, faster passes)`];
  const gma = [[formatCount(t.gma), `estimated GMA as planned (unfused ${formatCount(t.gmaUnfused)} elements)`]];
  if (t.timeUs === undefined) return [gmaChange, ...gma];
  const unfused = t.timeUsUnfused ?? t.timeUs;
  const less = unfused > 0 ? (100 * (unfused - t.timeUs)) / unfused : 0;
  return [
    [less >= 0 ? `${less.toFixed(1)}% less` : `${(-less).toFixed(1)}% more`, `estimated conv time, the planner's objective: ${t.timeUs.toFixed(1)} us (unfused ${unfused.toFixed(1)} us)`],
    gmaChange,
    ...gma,
  ];
}

/** The whole page. */
export function renderReport(input: ReportInput): string {
  const { dag, plan, hw, bench } = input;
  const layout = layoutGraph(dag, plan);
  const fused = plan.modules.filter((m) => isFused(m.kind));
  const t = plan.totals;
  const convLayers = dag.filter((l) => l.type === 's' || l.type === 'dw' || l.type === 'pw' || l.type === 'fc').length;
  // The planner's objective leads: estimated time where the hardware description has bandwidth figures (the
  // optimal planner may then accept more GMA for less time), else GMA.
  const cards = headlineCards(t);
  const fusedResult = bench?.results[0];
  if (fusedResult?.medianMs !== undefined) cards.splice(1, 0, [`${fmtMs(fusedResult.medianMs)} ms`, `measured: ${fusedResult.name}`]);
  cards.push([`${fused.length}`, `fused modules (FCMs) of ${plan.modules.length}`], [`${convLayers}`, `conv layers, ${dag.length} layers in all`]);
  const hwText = hw ? `${hw.name}: ${hw.sms} SMs, ${hw.shmemBytesPerSm / 1024} KiB shared memory per SM` : plan.hw;
  const overlapping = (() => {
    const seen = new Map<number, number>();
    for (const m of fused) for (const l of m.layers) seen.set(l, (seen.get(l) ?? 0) + 1);
    return [...seen].filter(([, c]) => c > 1).length;
  })();

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>fcm-opt report: ${esc(plan.model)}</title>
<style>${css}</style>
</head>
<body>
<header><h1>fcm-opt report: ${esc(plan.model)}</h1><p>${esc(hwText)} · planner mode ${esc(plan.mode)}</p></header>
<main>
<section id="summary"><h2>Summary</h2><div class="cards">${cards.map(([v, l]) => `<div class="card"><b>${esc(v)}</b><span>${esc(l)}</span></div>`).join('')}</div>
${overlapping > 0 ? `<p class="note">${overlapping} layers are in more than one fused pair (FusePlanner decides PW-DW, DW-PW and PW-PW independently); their frames are drawn nested.</p>` : ''}</section>
<div class="row">
<section id="graph-section" style="flex-basis:${Math.max(480, layout.width + 36)}px"><h2>Layer graph and fused modules</h2>
${legend(plan)}
<div class="scroll">
${graphSvg(dag, plan, layout)}
</div></section>
<section id="gma"><h2>Estimated global memory accesses per module</h2>
<p class="note">The planner's cost model (FusePlanner, arXiv 2404.19331, Sec. 5): elements read and written from global memory by each module run as planned, against its layers run one by one.</p>
<div class="scroll">
${gmaChart(dag, plan)}
</div></section>
</div>
${bench ? benchSection(plan, bench) : '<section id="bench"><h2>Measured</h2><p class="note">No measurements in this report: run <code>fcm-opt report … --bench</code> to add latency of the fused and unfused plans, onnxruntime WebGPU and CPU, and per-module GPU time.</p></section>'}
</main>
<footer>${esc(input.generator ?? 'generated by fcm-opt report')}</footer>
</body>
</html>
`;
}
