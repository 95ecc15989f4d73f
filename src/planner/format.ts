// Human-readable and JSON renderings of a Plan. The JSON form is the Plan itself (it can be saved, loaded
// and compared); the text form is a table of modules with their layers, shapes, tiles and GMA.
import type { Dag, DagLayer } from './dag.js';
import type { Plan, PlanModule, Tiles } from './plan.js';
import { escapeText, shortenTokens } from '../errors.js';

/** `--json`: { model, hw, mode, modules, totals } (+ estimates in fuseplanner mode). */
export function planToJson(plan: Plan): string {
  return `${JSON.stringify(plan, null, 2)}\n`;
}

/** Elements as a short figure: 1622016 -> "1.622M"; fractional counts (the FusePlanner reference's real-valued tiles) rounded. */
export function formatCount(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(3)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(3)}M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)}K`;
  return String(Math.round(n));
}

const num = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(2).replace(/\.?0+$/, ''));

export function formatTiles(t: Tiles): string {
  const parts: string[] = [];
  if (t.h !== undefined || t.w !== undefined) parts.push(`${t.h === undefined ? '?' : num(t.h)}x${t.w === undefined ? '?' : num(t.w)}`);
  if (t.d !== undefined) parts.push(`d${num(t.d)}`);
  if (t.l1Filters !== undefined) parts.push(`f${num(t.l1Filters)}`);
  if (t.l2Filters !== undefined) parts.push(`f2=${num(t.l2Filters)}`);
  return parts.join(' ') || '-';
}

const shape = (s: number[] | undefined) => (s ? s.join('x') : '?');
// Names come from the model: escaped and cut (src/errors.ts) so that the table stays a table on a terminal.
const layerName = (l: DagLayer) => escapeText(shortenTokens(Array.isArray(l.nodes) && l.nodes.length > 0 ? l.nodes.join('+') : String(l.name)));

/** Tables fit this many columns: the names column gives way (names cut in the middle; `--json` has them whole). */
export const tableWidth = 120;

/** `s` cut to `max` characters by replacing its middle with '~'. */
export function shortenMiddle(s: string, max: number): string {
  if (s.length <= max) return s;
  if (max <= 1) return s.slice(0, max);
  const head = Math.ceil((max - 1) / 2);
  return `${s.slice(0, head)}~${s.slice(s.length - (max - 1 - head))}`;
}

function table(rows: string[][], rightAligned: Set<number>, shrink?: number): string {
  // A loop, not Math.max(...column): spreading 300,000 rows as arguments overflows the stack.
  const widths = rows[0].map((_, c) => rows.reduce((w, r) => Math.max(w, r[c].length), 0));
  if (shrink !== undefined) {
    const others = widths.reduce((a, w, c) => a + (c === shrink ? 0 : w), 0) + 2 * (widths.length - 1);
    const room = Math.max(rows[0][shrink].length, tableWidth - others);
    if (widths[shrink] > room) {
      for (const r of rows) r[shrink] = shortenMiddle(r[shrink], room);
      widths[shrink] = room;
    }
  }
  return rows.map((r) => r.map((cell, c) => (rightAligned.has(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd()).join('\n');
}

export interface FormatOptions {
  /** Layer ids in more than one module (faithful mode only): flagged under the table. */
  overlapping?: number[];
}

/** The plan as a table plus totals. `dag` gives layer names and shapes. */
export function formatPlan(plan: Plan, dag: Dag, options: FormatOptions = {}): string {
  // Shapes are C x H x W; tiles H x W, d (depth), f (filters); LBL: the layers run one by one (unfused).
  const header = ['#', 'kind', 'layers', 'names', 'in -> out', 'tiles', 'GMA LBL', 'GMA', 'saved'];
  const rows: string[][] = [header];
  const withTime = plan.modules.some((m) => m.timeUs !== undefined);
  if (withTime) header.push('us (LBL)');
  plan.modules.forEach((m: PlanModule, i) => {
    const layers = m.layers.map((id) => dag[id]);
    const first = layers[0];
    const last = layers[layers.length - 1];
    const noEstimate = m.gma === 0 && m.gmaUnfused === 0;
    const row = [
      String(i),
      m.kind,
      m.layers.join('+'),
      layers.map(layerName).filter((n) => n !== '').join(' + '),
      `${shape(first?.ifms_shape)} -> ${shape(last?.ofms_shape)}`,
      formatTiles(m.tiles),
      noEstimate ? 'n/a' : formatCount(m.gmaUnfused),
      noEstimate ? 'n/a' : formatCount(m.gma),
      m.layers.length > 1 ? formatCount(m.gmaUnfused - m.gma) : '',
    ];
    if (withTime) row.push(m.timeUs === undefined ? '' : `${m.timeUs.toFixed(1)} (${(m.timeUsUnfused ?? m.timeUs).toFixed(1)})`);
    rows.push(row);
  });
  const fused = plan.modules.filter((m) => m.layers.length > 1);
  const t = plan.totals;
  const lines = [
    `plan for ${plan.model} on ${plan.hw} (mode ${plan.mode}): ${fused.length} fused module${fused.length === 1 ? '' : 's'} (FCMs), ${plan.modules.length - fused.length} layer-by-layer`,
    '',
    table(rows, new Set([0, 6, 7, 8]), 3),
    '',
    `conv GMA (elements): unfused ${formatCount(t.gmaUnfused)}, planned ${formatCount(t.gma)}, saved ${formatCount(t.saved)} (${t.savedPercent.toFixed(1)}% of the model's conv GMA)`,
  ];
  if (t.timeUs !== undefined) {
    const unfused = t.timeUsUnfused ?? t.timeUs;
    const less = unfused > 0 ? `, ${((100 * (unfused - t.timeUs)) / unfused).toFixed(1)}% less` : '';
    lines.push(`estimated conv time: ${t.timeUs.toFixed(1)} us (unfused ${unfused.toFixed(1)} us${less})`);
  }
  if (plan.modules.some((m) => m.gma === 0 && m.gmaUnfused === 0)) {
    lines.push('n/a: layers the cost model makes no estimate for (the FusePlanner reference estimates only DW and PW layers)');
  }
  if (options.overlapping && options.overlapping.length > 0) {
    lines.push(`note: layers ${options.overlapping.join(', ')} are in two fused pairs: the FusePlanner reference decides PW-DW, DW-PW and PW-PW independently;`
      + ' their savings are counted per pair (use --mode optimal for disjoint modules)');
  }
  const kernels = Object.entries(plan.kernels ?? {});
  if (kernels.length) {
    lines.push('', `kernel choices (${kernels.length} pointwise layer${kernels.length === 1 ? '' : 's'}; the others run the rule's kernels):`);
    for (const [node, k] of kernels) {
      const t = k.tuned;
      lines.push(`  ${node}: ${k.variant}${t ? ` ${t.us.toFixed(1)} us (rule ${t.rule} ${t.ruleUs.toFixed(1)} us)` : ''}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
