// `--max-memory` over a whole command. The importers charge what they allocate against the budget as they go
// (converters/: the file, the decoded message tree, tensor copies). Past the import, the big steps are checked before
// they start: the process's resident memory now plus what the step will add must stay within the budget, so that the
// command's peak resident memory (what `/usr/bin/time -v` reports) stays near it:
//   - the planner and the rewrite, after the import: the memory in use;
//   - the executor: the GPU buffers of its memory plan (activations), the weights and the read-back buffers (a GPU
//     that shares host memory, such as lavapipe, holds them in the process; a discrete GPU holds them on the card);
//   - `check`: onnxruntime's session of the reference model (the model bytes, its own copy of the weights, its
//     activations).
// Over it: exit 4 naming the step, the estimate and the memory in use.
import { overLimit } from './errors.js';

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** Refuses (exit 4) a step needing `need` more bytes when the process's resident memory plus that is over `maxMemory`. */
export function checkMemory(maxMemory: number | undefined, need: number, step: string, where: string): void {
  if (maxMemory === undefined) return;
  const rss = process.memoryUsage.rss();
  if (rss + need > maxMemory) {
    const what = need > 0 ? `about ${mib(need)} more on top of ${mib(rss)} in use` : `${mib(rss)} in use`;
    throw overLimit(where, `${step}: ${what}, over the memory budget of ${mib(maxMemory)} (--max-memory)`);
  }
}
