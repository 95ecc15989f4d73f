// Text rendering of a bench report and the progress bar.
import { formatCount } from '../planner/format.js';
import type { BenchReport } from './bench.js';

function table(rows: string[][], right: Set<number>): string {
  const widths = rows[0].map((_, c) => rows.reduce((w, r) => Math.max(w, (r[c] ?? '').length), 0));
  return rows.map((r) => r.map((cell, c) => (right.has(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd()).join('\n');
}

const ms = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(3));

export function formatBench(r: BenchReport): string {
  const out: string[] = [];
  out.push(`${r.model}: batch ${r.batch}${r.subBatches && r.subBatches > 1 ? ` (run as ${r.subBatches} sub-batches of ${r.batch / r.subBatches})` : ''}, ${r.runs} timed runs after ${r.warmup} warm-up (in blocks of ${r.block}), hw ${r.hw}${r.precision ? `, precision ${r.precision}` : ''}`);
  out.push(`device: ${r.device}${r.deviceFeatures ? `; ${r.deviceFeatures}` : ''}`);
  if (r.f32Tensors?.length) out.push(`fp16 with ${r.f32Tensors.length} tensor${r.f32Tensors.length > 1 ? 's' : ''} kept f32 (f16 rounding amplified there): ${r.f32Tensors.join(', ')}`);
  out.push('');
  const rows = [['', 'min ms', 'mean ms', 'median ms', 'p90 ms', 'p99 ms', 'images/s', 'vs fused']];
  for (const x of r.results) {
    if (x.unavailable !== undefined) rows.push([x.name, 'unavailable', '', '', '', '', '', '']);
    else {
      rows.push([x.name, ms(x.minMs), ms(x.meanMs), ms(x.medianMs), ms(x.p90Ms), ms(x.p99Ms),
        x.imagesPerS === undefined ? '-' : x.imagesPerS.toFixed(1), x.ratioToFused === undefined ? '-' : `${x.ratioToFused.toFixed(2)}x`]);
    }
  }
  out.push(table(rows, new Set([1, 2, 3, 4, 5, 6, 7])));
  for (const x of r.results) if (x.unavailable !== undefined) out.push(`  ${x.name}: ${x.unavailable}`);
  for (const x of r.results) if (x.detail !== undefined) out.push(`  ${x.name}: ${x.detail}`);
  if (r.hostSplit) {
    const h = r.hostSplit;
    out.push(`fused host time per run (ms, mean of ${h.runs}): upload ${ms(h.uploadMs)}, encode ${ms(h.encodeMs)}, submit ${ms(h.submitMs)}, wait ${ms(h.waitMs)}, read ${ms(h.readMs)}`);
  }
  if (r.throughput) {
    const t = r.throughput;
    out.push(`throughput (fused, median of ${t.rounds} rounds of ${t.runsPerRound} runs): ${t.imagesPerSecond.toFixed(1)} images/s with ${t.concurrency} in flight, ${t.sequentialImagesPerSecond.toFixed(1)} one at a time (${t.ratio.toFixed(2)}x)`);
  }
  out.push('');
  const how = r.layersMethod === 'wall' ? 'median of 5 profiled runs, wall time per node (the adapter has no timestamp queries)'
    : r.layersMethod === 'pass' ? 'GPU time of each node alone in one heated pass (timestamp queries), median of 6 rounds, each session first in 3'
      : r.layersMethod === 'timestamp' || r.layersMethod === undefined ? 'median of 5 profiled runs, GPU time from timestamp queries' : `time (${r.layersMethod})`;
  out.push(`Per module: ${how}, next to the planner's estimates${r.subBatches && r.subBatches > 1 ? `; split sessions: each node's time at the sub-batch of ${r.batch / r.subBatches}, times ${r.subBatches}` : ''}`);
  if (r.layersUnavailable) out.push(`  GPU times unavailable: ${r.layersUnavailable}`);
  const hasTime = r.layers.some((l) => l.estUs !== undefined);
  const head = ['#', 'kind', 'nodes', 'fused ms', 'unfused ms', 'GMA', 'GMA unfused'];
  if (hasTime) head.push('est us', 'est us unfused');
  const lrows = [head];
  for (const l of r.layers) {
    const nodes = l.nodes.length > 3 ? `${l.nodes.slice(0, 3).join('+')}+...` : l.nodes.join('+');
    const row = [l.module === null ? '' : String(l.module), l.kind, nodes, ms(l.fusedGpuMs), ms(l.unfusedGpuMs),
      l.gma === undefined ? '' : formatCount(l.gma), l.gmaUnfused === undefined ? '' : formatCount(l.gmaUnfused)];
    if (hasTime) row.push(l.estUs === undefined ? '' : l.estUs.toFixed(1), l.estUsUnfused === undefined ? '' : l.estUsUnfused.toFixed(1));
    lrows.push(row);
  }
  out.push(table(lrows, new Set([0, 3, 4, 5, 6, 7, 8])));
  return `${out.join('\n')}\n`;
}

/** A one-line progress bar redrawn in place on a terminal stream. */
export function progressBar(stream: NodeJS.WriteStream, label: string): { update: (done: number, total: number) => void; end: () => void } {
  const width = 30;
  let last = -1;
  return {
    update(done, total) {
      const filled = Math.round((done / total) * width);
      if (filled === last && done !== total) return;
      last = filled;
      stream.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`);
    },
    end() {
      if (last >= 0) stream.write('\r\x1b[K');
    },
  };
}
