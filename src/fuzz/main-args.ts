// Command-line options of `npm run fuzz` (src/fuzz/main.ts).
import type { FuzzOptions } from './engine.js';

function parseBytes(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgG]i?[bB]?)?$/.exec(v.trim());
  if (!m) throw new Error(`--max-memory: expected bytes like 1073741824 or 1G, got '${v}'`);
  const mult = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }[(m[2] ?? '').charAt(0).toLowerCase() as 'k' | 'm' | 'g'] ?? 1;
  return Math.round(Number(m[1]) * mult);
}

export function parseFuzzArgs(argv: string[]): FuzzOptions {
  const opts: FuzzOptions = { seconds: 60, seed: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const int = (v: string) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${a}: expected a non-negative integer, got '${v}'`);
      return n;
    };
    switch (a) {
      case '--seconds': opts.seconds = Number(value()); if (!(opts.seconds > 0)) throw new Error('--seconds must be positive'); break;
      case '--seed': opts.seed = int(value()); break;
      case '--jobs': opts.jobs = Math.max(1, int(value())); break;
      case '--case': opts.cases = [...(opts.cases ?? []), ...value().split(',').map(int)]; break;
      case '--save': opts.saveDir = value(); break;
      case '--no-minimize': opts.minimize = false; break;
      case '--max-memory': opts.maxMemory = parseBytes(value()); break;
      case '--timeout': opts.timeoutMs = Number(value()) * 1000; break;
      default: throw new Error(`unknown option '${a}'`);
    }
  }
  return opts;
}
