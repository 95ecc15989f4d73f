// The CLI's progress display on stderr: nothing for steps that finish within 2 s; then, on a terminal, one line
// rewritten in place, and otherwise a plain line every 5 s (logs and CI). --quiet turns it off.
import { setProgressSink, type ProgressSink } from '../progress.js';

export interface ProgressDisplay {
  /** Ends the display (a terminal's line is finished with a newline). */
  end(): void;
}

export function startProgressDisplay(stream: NodeJS.WriteStream = process.stderr, now = () => performance.now(), delayMs = 2000, everyMs = 5000): ProgressDisplay {
  const tty = stream.isTTY === true;
  let started: number | undefined;
  let lastShown = -Infinity;
  let open = false;
  const sink: ProgressSink = (what, done, total) => {
    const t = now();
    started ??= t;
    if (t - started < delayMs || t - lastShown < (tty ? 100 : everyMs)) return;
    lastShown = t;
    const line = `${what}: ${done}${total !== undefined ? ` of ${total}` : ''} (${((t - started) / 1000).toFixed(0)} s)`;
    if (tty) { stream.write(`\r${line}\x1b[K`); open = true; } else stream.write(`${line}\n`);
  };
  const previous = setProgressSink(sink);
  return {
    end() {
      setProgressSink(previous);
      if (open) stream.write('\n');
      open = false;
    },
  };
}
