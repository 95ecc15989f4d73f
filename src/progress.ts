// Progress of long steps (compiling GPU pipelines: minutes on a software Vulkan), reported to whoever listens:
// the CLI shows it on stderr (src/cli/progress.ts); the library stays silent unless a caller sets a sink.

/** `done` of `total` (when known) units of `what` finished. */
export type ProgressSink = (what: string, done: number, total?: number) => void;

let sink: ProgressSink | undefined;

/** Sets the sink (undefined: none); returns the previous one. */
export function setProgressSink(s: ProgressSink | undefined): ProgressSink | undefined {
  const prev = sink;
  sink = s;
  return prev;
}

export function reportProgress(what: string, done: number, total?: number): void {
  sink?.(what, done, total);
}
