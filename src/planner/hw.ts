// Hardware descriptions: the FusePlanner reference's `key::value` .cfg (extended with optional keys), the same description
// as JSON with units in the key names, bare names of the shipped hw_configs/, and `auto` (a description
// derived from the WebGPU adapter's info and limits plus a table of known GPUs). Format: hw_configs/README.md.
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { invalid, unsupported } from '../errors.js';
import { readInputTextSync } from '../input-file.js';
import type { HwConfig } from './hw-config.js';

const KiB = 1024;

type Unit = 'count' | 'KiB' | 'number';
interface CfgKey { field: keyof HwConfig; unit: Unit; required: boolean }

/** .cfg keys, matched case-insensitively like the FusePlanner reference (it lower-cases them). */
const cfgKeys: Record<string, CfgKey> = {
  sms: { field: 'sms', unit: 'count', required: true },
  l1: { field: 'l1BytesPerSm', unit: 'KiB', required: true },
  shmem: { field: 'shmemBytesPerSm', unit: 'KiB', required: true },
  warp_size: { field: 'warpSize', unit: 'count', required: true },
  l2: { field: 'l2Bytes', unit: 'KiB', required: false },
  dram_gbps: { field: 'dramGBps', unit: 'number', required: false },
  fp32_gflops: { field: 'fp32Gflops', unit: 'number', required: false },
  dispatch_us: { field: 'dispatchOverheadUs', unit: 'number', required: false },
  parallel_outputs: { field: 'parallelOutputs', unit: 'count', required: false },
  pwdw_time_factor: { field: 'pwdwTimeFactor', unit: 'number', required: false },
  dwpw_time_factor: { field: 'dwpwTimeFactor', unit: 'number', required: false },
  pwpw_time_factor: { field: 'pwpwTimeFactor', unit: 'number', required: false },
  int8_time_factor: { field: 'int8TimeFactor', unit: 'number', required: false },
  kernel_floor_us: { field: 'kernelFloorUs', unit: 'number', required: false },
  fcm_channel_ns: { field: 'fcmChannelNs', unit: 'number', required: false },
  workgroup_storage: { field: 'workgroupStorageBytes', unit: 'KiB', required: false },
  pwdw_max_halo: { field: 'pwdwMaxHalo', unit: 'count', required: false },
};

/** JSON keys: HwConfig's fields; `name` optional (defaults to the file name). */
const jsonKeys: Record<string, { unit: 'count' | 'bytes' | 'number'; required: boolean }> = {
  sms: { unit: 'count', required: true },
  l1BytesPerSm: { unit: 'bytes', required: true },
  shmemBytesPerSm: { unit: 'bytes', required: true },
  warpSize: { unit: 'count', required: true },
  l2Bytes: { unit: 'bytes', required: false },
  dramGBps: { unit: 'number', required: false },
  fp32Gflops: { unit: 'number', required: false },
  dispatchOverheadUs: { unit: 'number', required: false },
  parallelOutputs: { unit: 'count', required: false },
  pwdwTimeFactor: { unit: 'number', required: false },
  dwpwTimeFactor: { unit: 'number', required: false },
  pwpwTimeFactor: { unit: 'number', required: false },
  int8TimeFactor: { unit: 'number', required: false },
  kernelFloorUs: { unit: 'number', required: false },
  fcmChannelNs: { unit: 'number', required: false },
  pwdwMaxHalo: { unit: 'count', required: false },
  workgroupStorageBytes: { unit: 'bytes', required: false },
};

export interface ParseOptions {
  /** Receives warnings (skipped free-text lines). Default: stderr. */
  warn?: (message: string) => void;
}

// stderr in Node; the console in a browser (no process there).
const defaultWarn = (m: string) => {
  if (typeof process !== 'undefined' && process.stderr) process.stderr.write(`fcm-opt: warning: ${m}\n`);
  else console.warn(`fcm-opt: warning: ${m}`);
};
const stem = (file: string) => basename(file, extname(file));

/** Parses the FusePlanner reference's `key::value` format. `file` names the source in messages and gives the default name. */
export function parseHwCfg(text: string, file: string, options: ParseOptions = {}): HwConfig {
  const warn = options.warn ?? defaultWarn;
  const hw: Partial<HwConfig> = {};
  const seen = new Map<string, number>();
  let name: string | undefined;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const lineNo = i + 1;
    const where = `${file}:${lineNo}`;
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const parts = line.split('::');
    if (parts.length < 2) {
      // The FusePlanner reference ignores such lines (its parse_line returns no key); one of its configs had a free-text note.
      warn(`${where}: skipped a line without 'key::value': '${line.length > 60 ? `${line.slice(0, 60)}...` : line}'`);
      return;
    }
    if (parts.length > 2) throw invalid(where, `more than one '::' in '${line}'`);
    const key = parts[0].trim().toLowerCase();
    const value = parts[1].trim();
    if (key === '') throw invalid(where, `empty key in '${line}'`);
    const previous = seen.get(key);
    if (previous !== undefined) throw invalid(where, `key '${parts[0].trim()}' repeats line ${previous}`);
    seen.set(key, lineNo);
    if (key === 'name') {
      if (value === '') throw invalid(where, `empty name`);
      name = value;
      return;
    }
    const spec = Object.hasOwn(cfgKeys, key) ? cfgKeys[key] : undefined;
    if (!spec) throw invalid(where, `unknown key '${parts[0].trim()}' (known: name, ${Object.keys(cfgKeys).join(', ')}; see hw_configs/README.md)`);
    const num = Number(value);
    // An empty value is Number('') = 0: refused here too.
    if (!Number.isFinite(num) || num <= 0) throw invalid(where, `'${parts[0].trim()}' must be a positive number, got '${value}'`);
    if (spec.unit === 'count' && !Number.isInteger(num)) throw invalid(where, `'${parts[0].trim()}' must be a whole number, got '${value}'`);
    const bytes = spec.unit === 'KiB' ? num * KiB : num;
    if (spec.unit === 'KiB' && !Number.isInteger(bytes)) throw invalid(where, `'${parts[0].trim()}' (KiB) must be a whole number of bytes, got '${value}'`);
    (hw as Record<string, number>)[spec.field] = bytes;
  });
  const missing = Object.entries(cfgKeys).filter(([, s]) => s.required && hw[s.field] === undefined).map(([k]) => k);
  if (missing.length > 0) throw invalid(`${file}:${lines.length}`, `missing required key${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (end of file)`);
  return finish({ name: name ?? stem(file), ...hw } as HwConfig, file);
}

/** Parses the JSON form (HwConfig with units in the key names). */
export function parseHwJson(text: string, file: string): HwConfig {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw invalid(file, `not valid JSON: ${(e as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw invalid(file, 'a hardware description must be a JSON object');
  const obj = data as Record<string, unknown>;
  const hw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    if (key === 'name') {
      if (typeof value !== 'string' || value === '') throw invalid(file, `key 'name' must be a non-empty string`);
      hw.name = value;
      continue;
    }
    const spec = Object.hasOwn(jsonKeys, key) ? jsonKeys[key] : undefined;
    if (!spec) throw invalid(file, `unknown key '${key}' (known: name, ${Object.keys(jsonKeys).join(', ')}; see hw_configs/README.md)`);
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw invalid(file, `key '${key}' must be a positive number`);
    if (spec.unit !== 'number' && !Number.isInteger(value)) throw invalid(file, `key '${key}' must be a whole number`);
    hw[key] = value;
  }
  const missing = Object.entries(jsonKeys).filter(([k, s]) => s.required && hw[k] === undefined).map(([k]) => k);
  if (missing.length > 0) throw invalid(file, `missing required key${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  if (hw.name === undefined) hw.name = stem(file);
  return finish(hw as unknown as HwConfig, file);
}

/**
 * Ranges that keep every estimate finite: a dram_GBps of 5e-324 is a positive number, but bytes divided by it are
 * Infinity microseconds. Rates, costs and factors within 1e-6..1e15, counts within 32 bits, sizes up to 2^48 bytes.
 */
const ranges: Record<'count' | 'bytes' | 'number', [number, number]> = { count: [1, 2 ** 31 - 1], bytes: [1, 2 ** 48], number: [1e-6, 1e15] };
const unitOfField: Record<string, 'count' | 'bytes' | 'number'> = Object.fromEntries(Object.entries(jsonKeys).map(([k, v]) => [k, v.unit]));

function checkRanges(hw: HwConfig, file: string): void {
  const cfgKeyOf = new Map(Object.entries(cfgKeys).map(([k, v]) => [v.field as string, k]));
  for (const [field, value] of Object.entries(hw)) {
    const unit = unitOfField[field];
    if (unit === undefined || typeof value !== 'number') continue;
    const [lo, hi] = ranges[unit];
    if (!(value >= lo && value <= hi)) {
      const key = file.endsWith('.json') ? field : cfgKeyOf.get(field) ?? field;
      throw invalid(file, `'${key}' is ${value}${unit === 'bytes' ? ' bytes' : ''}, outside ${lo}..${hi}; the estimates would not be finite`);
    }
  }
}

function finish(hw: HwConfig, file: string): HwConfig {
  checkRanges(hw, file);
  if (hw.shmemBytesPerSm > hw.l1BytesPerSm) throw invalid(file, `shared memory (${hw.shmemBytesPerSm} B) exceeds L1 (${hw.l1BytesPerSm} B) per SM`);
  return hw;
}

/** The folder of shipped descriptions: found upwards from this module (src/ or dist/src/), then the cwd. */
export function hwConfigsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'hw_configs');
    if (existsSync(join(candidate, 'README.md'))) return candidate;
    dir = dirname(dir);
  }
  return resolve('hw_configs');
}

/** Names of the shipped descriptions (hw_configs/NAME.cfg or NAME.json). */
export function shippedHwNames(): string[] {
  const dir = hwConfigsDir();
  if (!existsSync(dir)) return [];
  return [...new Set(readdirSync(dir).filter((f) => /\.(cfg|json)$/.test(f)).map(stem))].sort();
}

export interface LoadHwOptions extends ParseOptions {
  /** For `auto`: what the WebGPU adapter reports (queried by the runtime). */
  adapter?: { info: AdapterInfoLike; limits: AdapterLimitsLike };
}

/** Largest hardware description file read (a real one is a few hundred bytes): over it, exit 4 before reading. */
export const maxHwFileBytes = 4 * 1024 ** 2;

/** Reads a description: a path to .cfg/.json, a bare shipped name ("h100"), or "auto" (needs options.adapter). */
export function loadHw(pathOrName: string, options: LoadHwOptions = {}): HwConfig {
  if (pathOrName === 'auto') {
    if (!options.adapter) throw unsupported('--hw auto', 'no WebGPU adapter information was given; pass --hw with a file or a name');
    return hwFromAdapter(options.adapter.info, options.adapter.limits);
  }
  let file = pathOrName;
  const isBareName = !/[\\/]/.test(pathOrName) && extname(pathOrName) === '' && !existsSync(pathOrName);
  if (isBareName) {
    const dir = hwConfigsDir();
    const found = ['.cfg', '.json'].map((e) => join(dir, `${pathOrName}${e}`)).find((f) => existsSync(f));
    if (!found) {
      const names = shippedHwNames();
      throw invalid(pathOrName, `no such hardware description (a .cfg/.json path, 'auto', or one of: ${names.join(', ') || 'none found'})`);
    }
    file = found;
  }
  // A regular file of at most maxHwFileBytes (src/input-file.ts): no FIFO, device or unreadable file gets further.
  const text = readInputTextSync(file, { maxBytes: maxHwFileBytes, limitName: 'the limit for a hardware description' });
  const shown = isBareName ? `hw_configs/${basename(file)}` : file;
  return extname(file).toLowerCase() === '.json' ? parseHwJson(text, shown) : parseHwCfg(text, shown, options);
}

// ---- --hw auto -----------------------------------------------------------------------------------------

/** The fields of WebGPU's GPUAdapterInfo we use. */
export interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}

/** The fields of GPUSupportedLimits we use (others are ignored). */
export interface AdapterLimitsLike {
  maxComputeWorkgroupStorageSize: number;
  [limit: string]: unknown;
}

interface KnownGpu {
  match: RegExp;
  hw: Omit<HwConfig, 'workgroupStorageBytes'>;
}

/**
 * Known GPUs, matched on the adapter's description/device/architecture strings. Datasheet values unless
 * noted; L1 and shared memory per SM. The shipped .cfg files are the reference for GPUs that have one
 * (test/planner/hw.test.ts checks they agree), except the RTX A4000, where the FusePlanner reference's cfg says 96 SMs.
 */
export const knownGpus: readonly KnownGpu[] = [
  // Hopper: time figures fitted to fcm-opt's kernels timed in one pass on an H100 (hw_configs/h100.cfg), the H200
  // (the same chip with faster memory, which these kernels do not reach) alike.
  { match: /\bh100\b/i, hw: { name: 'h100', sms: 132, l1BytesPerSm: 256 * KiB, shmemBytesPerSm: 228 * KiB, warpSize: 32, l2Bytes: 50 * 1024 * KiB, dramGBps: 4500, fp32Gflops: 13500, dispatchOverheadUs: 3.5, kernelFloorUs: 1, parallelOutputs: 60000, pwdwTimeFactor: 1.5, dwpwTimeFactor: 4, pwpwTimeFactor: 1.33, fcmChannelNs: 35, int8TimeFactor: 5, pwdwMaxHalo: 512 } },
  { match: /\bh200\b/i, hw: { name: 'h100', sms: 132, l1BytesPerSm: 256 * KiB, shmemBytesPerSm: 228 * KiB, warpSize: 32, l2Bytes: 50 * 1024 * KiB, dramGBps: 4500, fp32Gflops: 13500, dispatchOverheadUs: 3.5, kernelFloorUs: 1, parallelOutputs: 60000, pwdwTimeFactor: 1.5, dwpwTimeFactor: 4, pwpwTimeFactor: 1.33, fcmChannelNs: 35, int8TimeFactor: 5, pwdwMaxHalo: 512 } },
  { match: /\ba100\b/i, hw: { name: 'a100', sms: 108, l1BytesPerSm: 192 * KiB, shmemBytesPerSm: 164 * KiB, warpSize: 32, l2Bytes: 40 * 1024 * KiB, dramGBps: 1555, fp32Gflops: 19500 } },
  { match: /rtx\s*4090/i, hw: { name: 'rtx4090', sms: 128, l1BytesPerSm: 128 * KiB, shmemBytesPerSm: 100 * KiB, warpSize: 32, l2Bytes: 72 * 1024 * KiB, dramGBps: 1008, fp32Gflops: 82600 } },
  // GA104 has 48 SMs (6144 CUDA cores); the FusePlanner reference's rtxa4000.cfg says 96, kept there for its estimates.
  { match: /rtx\s*a4000/i, hw: { name: 'rtxa4000', sms: 48, l1BytesPerSm: 128 * KiB, shmemBytesPerSm: 100 * KiB, warpSize: 32, l2Bytes: 4 * 1024 * KiB, dramGBps: 448, fp32Gflops: 19200 } },
  { match: /gtx\s*1660/i, hw: { name: 'gtx1660', sms: 22, l1BytesPerSm: 96 * KiB, shmemBytesPerSm: 64 * KiB, warpSize: 32, l2Bytes: 1536 * KiB, dramGBps: 192, fp32Gflops: 5000 } },
  { match: /\borin\b|ga10b/i, hw: { name: 'orin', sms: 16, l1BytesPerSm: 192 * KiB, shmemBytesPerSm: 164 * KiB, warpSize: 32, l2Bytes: 4 * 1024 * KiB, dramGBps: 204.8, fp32Gflops: 5300 } },
  // Mesa's software rasterizers: a CPU. One "SM" per core is unknowable here; 8 matches the CI runners.
  // "Shared memory" is what WebGPU allows (32 KiB), L1 a typical per-core L1+L2 share.
  { match: /llvmpipe|lavapipe/i, hw: { name: 'lavapipe', sms: 8, l1BytesPerSm: 64 * KiB, shmemBytesPerSm: 32 * KiB, warpSize: 8, dramGBps: 20, fp32Gflops: 100, dispatchOverheadUs: 50 } },
];

/**
 * A description from what the WebGPU adapter reports: the known GPU whose pattern matches the adapter's
 * strings, with WebGPU's workgroup-storage limit from `limits`. An unknown adapter is refused (exit 3)
 * rather than guessed: its SM count and caches decide the tiles.
 */
export function hwFromAdapter(info: AdapterInfoLike, limits: AdapterLimitsLike): HwConfig {
  const text = [info.description, info.device, info.architecture, info.vendor].filter((s) => s).join(' ');
  const wgStorage = limits.maxComputeWorkgroupStorageSize;
  if (!Number.isInteger(wgStorage) || wgStorage <= 0) {
    throw invalid('--hw auto', `adapter limit maxComputeWorkgroupStorageSize is ${String(wgStorage)}`);
  }
  const known = knownGpus.find((g) => g.match.test(text));
  if (!known) {
    throw unsupported('--hw auto', `unknown GPU '${text || 'no adapter description'}'; pass --hw with a .cfg or .json description (hw_configs/README.md)`);
  }
  const warpSize = info.subgroupMaxSize && Number.isInteger(info.subgroupMaxSize) ? info.subgroupMaxSize : known.hw.warpSize;
  return {
    ...known.hw,
    warpSize,
    workgroupStorageBytes: wgStorage,
  };
}
