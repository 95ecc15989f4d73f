// Dawn writes its own diagnostics to the process's stderr from native code (fprintf to fd 2): on lavapipe every
// adapter request prints two "Warning: max...PerPipelineLayout artificially reduced ..." lines, which are no fault
// of the input and broke the CLI's one-line-per-failure contract. They are shown only with --verbose.
//
// Node has no dup2, so fd 2 is swapped by numbers: open a second descriptor on the same stderr (/proc/self/fd/2),
// close 2, open /dev/null (the lowest free number: 2), run the native call, close 2, reopen the saved stderr (2
// again), close the spare. Every step is checked; when a step does not give fd 2 back (another thread opened a file
// in the window) or stderr cannot be reopened (a socket), the call runs with stderr as it is.
import { closeSync, fstatSync, openSync } from 'node:fs';

let show = false;

/** --verbose: let native diagnostics through. */
export function showNativeDiagnostics(on: boolean): void {
  show = on;
}

/** Runs `f` (a synchronous native call) with fd 2 pointed at /dev/null unless native diagnostics are shown. */
export function withNativeStderrMuted<T>(f: () => T): T {
  // Not in a browser (no process there) and only where /proc/self/fd exists.
  if (show || typeof process === 'undefined' || process.platform !== 'linux') return f();
  let saved: number;
  try {
    saved = openSync('/proc/self/fd/2', 'a');
    const a = fstatSync(2), b = fstatSync(saved);
    if (a.dev !== b.dev || a.ino !== b.ino) {
      closeSync(saved);
      return f();
    }
  } catch {
    return f();
  }
  let muted = false;
  try {
    closeSync(2);
    const nul = openSync('/dev/null', 'a');
    if (nul !== 2) closeSync(nul); // fd 2 went elsewhere meanwhile: nothing is muted
    else muted = true;
  } catch {
    // /dev/null missing: stderr is restored below.
  }
  try {
    return f();
  } finally {
    if (muted) closeSync(2);
    const back = openSync(`/proc/self/fd/${saved}`, 'a');
    if (back !== 2) closeSync(back);
    closeSync(saved);
  }
}
