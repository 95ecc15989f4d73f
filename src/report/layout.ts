// Layout of the report's graph: every DAG layer as a box, ranked top to bottom (rank = longest path from an
// input), fused modules as frames around their layers, edges routed through the gaps between rows. Pure
// data, so tests can check readability (no overlapping boxes or labels) without a browser.
//
// Text widths are estimated for a monospace font (the page asks for one): a label is truncated to what fits
// its box, and the full text goes to the hover title instead.
import type { Dag, DagLayer } from '../planner/dag.js';
import type { ModuleKind, Plan } from '../planner/plan.js';

export const fontSize = 11;
/** Advance of one monospace glyph, in em. DejaVu Sans Mono, Menlo, Consolas and Courier are 0.60 em;
 * 0.62 leaves a margin for fonts that are a little wider. */
export const glyphEm = 0.62;
export const lineHeight = 14;

const boxW = 280;
const convH = 12 + 3 * lineHeight; // name, kind + kernel, shapes
const otherH = 10 + lineHeight;    // op and name on one line
const padX = 8;                    // text inset inside a box
const framePadBase = 7;
const framePadStep = 6;
const laneGap = 9;

export interface Rect { x: number; y: number; w: number; h: number }

export interface TextBox extends Rect {
  text: string;
  /** Baseline of the text (y is the top of its box). */
  baseline: number;
  /** Text anchored at its end (x + w) rather than its start. */
  anchorEnd?: boolean;
  cls: string;
}

export interface NodeBox extends Rect {
  id: number;
  rank: number;
  column: number;
  conv: boolean;
  /** The layer's kind as drawn: 's', 'dw', 'pw', 'fc' or 'op'. */
  kind: string;
  labels: TextBox[];
  /** Full text for the hover title. */
  title: string[];
}

export interface FrameBox extends Rect {
  module: number;
  kind: ModuleKind;
  /** 0 for the innermost frame; fuseplanner mode can put one layer in several pairs, drawn as nested frames. */
  level: number;
  /** One rectangle around all layers, or one per layer when they are in different columns. */
  rects: Rect[];
  /** Joins the rectangles of a module drawn in pieces. */
  connector?: string;
  label: TextBox;
}

export interface EdgePath { from: number; to: number; d: string; long: boolean }

export interface GraphLayout {
  width: number;
  height: number;
  nodes: NodeBox[];
  frames: FrameBox[];
  edges: EdgePath[];
}

export const textWidth = (text: string, size = fontSize) => Math.ceil([...text].length * size * glyphEm);

/** `text` cut to at most `width` pixels, with an ellipsis when cut. Counts code points, not UTF-16 units. */
export function fitText(text: string, width: number, size = fontSize): string {
  const chars = [...text];
  const max = Math.floor(width / (size * glyphEm));
  if (chars.length <= max) return text;
  return max <= 1 ? '…'.slice(0, Math.max(0, max)) : `${chars.slice(0, max - 1).join('')}…`;
}

export const isFused = (kind: ModuleKind) => kind === 'pwdw' || kind === 'dwpw' || kind === 'pwpw';
export const moduleKindLabel: Record<ModuleKind, string> = { pwdw: 'PW-DW', dwpw: 'DW-PW', pwpw: 'PW-PW', dw: 'DW', pw: 'PW', s: 'CONV', fc: 'FC' };

const shapeText = (s: readonly number[] | undefined) => (s && s.length > 0 ? s.join('x') : '?');

/** "3x3", "1x1" or "FC" from the DAG's weights_shape (s: [F, C, K, K], dw: [C, K, K], pw/fc: [F, C]). */
export function kernelText(l: DagLayer): string {
  const w = l.weights_shape;
  switch (l.type) {
    case 's': return w && w.length === 4 ? `${w[2]}x${w[3]}` : '?';
    case 'dw': return w && w.length === 3 ? `${w[1]}x${w[2]}` : '?';
    case 'pw': return '1x1';
    case 'fc': return 'FC';
    default: return '';
  }
}

export const layerName = (l: DagLayer) => (Array.isArray(l.nodes) && l.nodes.length > 0 ? l.nodes.join('+') : String(l.name));

const isConv = (l: DagLayer) => l.type === 's' || l.type === 'dw' || l.type === 'pw' || l.type === 'fc';

function convSummary(l: DagLayer): string {
  const parts = [l.type === 's' ? 'CONV' : String(l.type).toUpperCase(), kernelText(l)];
  if (l.type !== 'fc' && l.strides !== undefined && l.strides !== 1) parts.push(`s${Array.isArray(l.strides) ? l.strides.join('x') : l.strides}`);
  if (l.activation && l.activation !== '0') parts.push(`· ${l.activation}`);
  return parts.filter((p) => p !== '').join(' ');
}

/** Layer ranks: 1 + the largest parent rank (ids are topological; edges to later ids only are followed). */
export function layerRanks(dag: Dag): number[] {
  const rank = new Array<number>(dag.length).fill(0);
  for (const l of dag) for (const p of l.parents) if (p < l.id) rank[l.id] = Math.max(rank[l.id], rank[p] + 1);
  return rank;
}

/**
 * Nesting levels of the fused modules' frames: modules that share a layer get different levels, so that
 * their frames stay apart (one pad per level). Lone layers (LBL modules) get no frame.
 */
function frameLevels(plan: Plan): Map<number, number> {
  const levels = new Map<number, number>();
  const used = new Map<number, Set<number>>(); // layer -> levels taken
  plan.modules.forEach((m, i) => {
    if (!isFused(m.kind)) return;
    let level = 0;
    while (m.layers.some((l) => used.get(l)?.has(level))) level++;
    levels.set(i, level);
    for (const l of m.layers) {
      if (!used.has(l)) used.set(l, new Set());
      used.get(l)!.add(level);
    }
  });
  return levels;
}

export function layoutGraph(dag: Dag, plan: Plan): GraphLayout {
  const rank = layerRanks(dag);
  const levels = frameLevels(plan);
  const maxLevel = Math.max(0, ...levels.values());
  const maxPad = framePadBase + framePadStep * maxLevel;
  const frameLabelW = textWidth('#0000 PW-DW');
  // Gaps leave room for two frames' pads (a frame ends, the next begins) and for the frame labels at the left.
  const gapY = 2 * maxPad + 16;
  const gapX = frameLabelW + 2 * maxPad + 24;
  const marginLeft = frameLabelW + maxPad + 16;
  const marginTop = maxPad + 12;

  // Columns within each rank: nearest free column to the mean column of the parents, so chains stay straight.
  const byRank: number[][] = [];
  dag.forEach((l) => { (byRank[rank[l.id]] ??= []).push(l.id); });
  const column = new Array<number>(dag.length).fill(0);
  for (const ids of byRank) {
    if (!ids) continue;
    const wanted = ids.map((id) => {
      const ps = dag[id].parents.filter((p) => p < id);
      return { id, want: ps.length > 0 ? ps.reduce((s, p) => s + column[p], 0) / ps.length : 0 };
    }).sort((a, b) => a.want - b.want || a.id - b.id);
    const taken = new Set<number>();
    for (const { id, want } of wanted) {
      let best = -1;
      for (let d = 0; best < 0; d++) {
        for (const c of [Math.round(want) - d, Math.round(want) + d]) if (c >= 0 && !taken.has(c) && best < 0) best = c;
      }
      taken.add(best);
      column[id] = best;
    }
  }

  const rowH = byRank.map((ids) => (ids ?? []).reduce((h, id) => Math.max(h, isConv(dag[id]) ? convH : otherH), -Infinity));
  const rowY: number[] = [];
  let y = marginTop;
  for (let r = 0; r < byRank.length; r++) {
    rowY.push(y);
    y += rowH[r] + gapY;
  }
  const columns = Math.max(1, ...column.map((c) => c + 1));
  const colX = (c: number) => marginLeft + c * (boxW + gapX);

  const moduleOf = new Map<number, number[]>();
  plan.modules.forEach((m, i) => m.layers.forEach((l) => { if (!moduleOf.has(l)) moduleOf.set(l, []); moduleOf.get(l)!.push(i); }));

  const nodes: NodeBox[] = dag.map((l) => {
    const conv = isConv(l);
    const x = colX(column[l.id]);
    const top = rowY[rank[l.id]];
    const h = conv ? convH : otherH;
    const inner = boxW - 2 * padX;
    const name = layerName(l);
    const lines: { text: string; cls: string }[] = conv
      ? [
        { text: fitText(name, inner), cls: 'name' },
        { text: fitText(convSummary(l), inner), cls: 'kind' },
        { text: fitText(`${shapeText(l.ifms_shape)} → ${shapeText(l.ofms_shape)}`, inner), cls: 'shape' },
      ]
      : [{ text: fitText(`${l.op ?? l.name}  ${l.op !== undefined && l.op !== l.name ? name : shapeText(l.ofms_shape)}`, inner), cls: 'op' }];
    const labels: TextBox[] = lines.map((line, i) => ({
      text: line.text,
      cls: line.cls,
      x: x + padX,
      y: top + 5 + i * lineHeight,
      w: textWidth(line.text),
      h: lineHeight,
      baseline: top + 5 + i * lineHeight + fontSize,
    }));
    const title = [
      `layer ${l.id}: ${name}`,
      l.op !== undefined ? `op ${l.op}` : `op ${l.name}`,
      conv ? convSummary(l) : '',
      `${shapeText(l.ifms_shape)} → ${shapeText(l.ofms_shape)}`,
      l.weights_shape ? `weights ${shapeText(l.weights_shape)}` : '',
    ].filter((t) => t !== '');
    return { id: l.id, rank: rank[l.id], column: column[l.id], conv, kind: conv ? String(l.type) : 'op', x, y: top, w: boxW, h, labels, title };
  });

  // A module whose layers share a column is one frame from its first to its last layer. FusePlanner's mode
  // pairs a layer with the next conv layer in list order, which can sit on another branch: then each layer
  // gets its own frame of the module's colour, joined by a dashed line (still one frame element).
  const frames: FrameBox[] = [];
  for (const [i, level] of levels) {
    const m = plan.modules[i];
    const members = m.layers.map((id) => nodes[id]).filter((n) => n !== undefined);
    if (members.length === 0) continue;
    const pad = framePadBase + framePadStep * level;
    const around = (ns: NodeBox[]): Rect => {
      const x0 = Math.min(...ns.map((n) => n.x)) - pad, y0 = Math.min(...ns.map((n) => n.y)) - pad;
      return { x: x0, y: y0, w: Math.max(...ns.map((n) => n.x + n.w)) + pad - x0, h: Math.max(...ns.map((n) => n.y + n.h)) + pad - y0 };
    };
    const oneColumn = members.every((n) => n.column === members[0].column);
    const rects = oneColumn ? [around(members)] : members.map((n) => around([n]));
    const bound = around(members);
    let connector: string | undefined;
    if (!oneColumn) {
      const c = rects.map((r) => [r.x + r.w / 2, r.y + r.h / 2]);
      connector = c.map(([cx, cy], k) => `${k === 0 ? 'M' : 'L'}${cx},${cy}`).join(' ');
    }
    // Labels sit left of the frame's column, one slot per nesting level, so nested frames that start on the
    // same row do not cover each other's labels.
    const first = members.reduce((a, b) => (b.y < a.y || (b.y === a.y && b.x < a.x) ? b : a));
    const text = `#${i} ${moduleKindLabel[m.kind]}`;
    const w = textWidth(text);
    const right = first.x - maxPad - 4;
    const top = first.y - maxPad + level * lineHeight;
    frames.push({
      module: i, kind: m.kind, level, ...bound, rects, connector,
      label: { text, cls: 'flabel', x: right - w, y: top, w, h: lineHeight, baseline: top + fontSize, anchorEnd: true },
    });
  }
  frames.sort((a, b) => b.level - a.level || a.module - b.module); // outer frames first (drawn below)

  // Edges. Adjacent ranks: a curve through the gap. Longer: down into the gap below the parent's row, across
  // to a lane right of all boxes and frames, down, and back across in the gap above the child's row.
  const graphRight = colX(columns - 1) + boxW + maxPad;
  const edges: EdgePath[] = [];
  const lanes: number[] = []; // last rank each lane is busy until
  const longEdges: { from: number; to: number }[] = [];
  for (const l of dag) {
    for (const c of l.children) {
      if (c <= l.id || !nodes[c]) continue;
      if (rank[c] - rank[l.id] === 1) {
        const p = nodes[l.id], q = nodes[c];
        const x0 = p.x + p.w / 2, y0 = p.y + p.h, x1 = q.x + q.w / 2, y1 = q.y;
        const my = (y0 + y1) / 2;
        edges.push({ from: l.id, to: c, long: false, d: `M${x0},${y0} C${x0},${my} ${x1},${my} ${x1},${y1 - 1}` });
      } else longEdges.push({ from: l.id, to: c });
    }
  }
  longEdges.sort((a, b) => rank[a.from] - rank[b.from] || rank[a.to] - rank[b.to]);
  let lanesUsed = 0;
  for (const e of longEdges) {
    let lane = lanes.findIndex((busyUntil) => busyUntil < rank[e.from]);
    if (lane < 0) { lane = lanes.length; lanes.push(0); }
    lanes[lane] = rank[e.to];
    lanesUsed = Math.max(lanesUsed, lane + 1);
    const p = nodes[e.from], q = nodes[e.to];
    const laneX = graphRight + 14 + lane * laneGap;
    const off = (lane % 4) * 3;
    const x0 = p.x + p.w - 18, y0 = p.y + p.h;
    const yBelow = rowY[rank[e.from]] + rowH[rank[e.from]] + maxPad + 3 + off;
    const yAbove = rowY[rank[e.to]] - maxPad - 3 - off;
    const x1 = q.x + q.w - 18;
    edges.push({ from: e.from, to: e.to, long: true, d: `M${x0},${y0} V${yBelow} H${laneX} V${yAbove} H${x1} V${q.y - 1}` });
  }

  const width = graphRight + 14 + lanesUsed * laneGap + 16;
  const height = y - gapY + marginTop;
  return { width, height, nodes, frames, edges };
}

export const intersects = (a: Rect, b: Rect) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/** Pairs of overlapping boxes (layer boxes, and every text label) in a layout: empty when readable. */
export function overlaps(layout: GraphLayout): Array<[string, string]> {
  const items: { what: string; r: Rect }[] = [];
  for (const n of layout.nodes) items.push({ what: `layer ${n.id} box`, r: n });
  const texts: { what: string; r: Rect; owner?: number }[] = [];
  for (const n of layout.nodes) n.labels.forEach((t, i) => texts.push({ what: `layer ${n.id} label ${i}`, r: t, owner: n.id }));
  for (const f of layout.frames) texts.push({ what: `module ${f.module} label`, r: f.label });
  const found: Array<[string, string]> = [];
  const check = (list: { what: string; r: Rect }[]) => {
    // Sweep by y: boxes sorted by top; only boxes that start before one ends can meet it.
    const s = [...list].sort((a, b) => a.r.y - b.r.y);
    for (let i = 0; i < s.length; i++) {
      for (let j = i + 1; j < s.length && s[j].r.y < s[i].r.y + s[i].r.h; j++) {
        if (intersects(s[i].r, s[j].r)) found.push([s[i].what, s[j].what]);
      }
    }
  };
  check(items);
  check(texts);
  // Labels stay inside their own box, and frame labels inside no layer box.
  for (const t of texts) {
    for (const n of layout.nodes) {
      if (t.owner === n.id) {
        if (t.r.x < n.x || t.r.y < n.y || t.r.x + t.r.w > n.x + n.w || t.r.y + t.r.h > n.y + n.h) found.push([t.what, `outside layer ${n.id} box`]);
      } else if (intersects(t.r, n)) found.push([t.what, `layer ${n.id} box`]);
    }
  }
  return found;
}
