// Hardware descriptions (src/planner/hw.ts) against hw_configs/README.md: each .cfg and .json rule broken on its
// own, boundary values (0, negative, fractions, KiB that are not whole bytes, infinities), the warnings, how
// --hw finds files and shipped names, and the known-GPU table behind --hw auto.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FcmError } from '../../src/errors.js';
import { hwConfigsDir, hwFromAdapter, loadHw, parseHwCfg, parseHwJson, shippedHwNames } from '../../src/planner/hw.js';
import type { HwConfig } from '../../src/planner/hw-config.js';

const KiB = 1024;
const required = 'SMs::22\nL1::96\nshmem::64\nwarp_size::32\n';

function fails(fn: () => unknown, message: string | RegExp, kind: FcmError['kind'] = 'invalid'): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FcmError, `expected FcmError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

const quiet = (text: string, file = 'g.cfg') => {
  const warnings: string[] = [];
  const hw = parseHwCfg(text, file, { warn: (m) => warnings.push(m) });
  return { hw, warnings };
};

test('cfg: blank lines and comment-only lines are skipped silently; a comment may follow a value', () => {
  const { hw, warnings } = quiet(`\n   \n# header\n  # indented comment\nSMs::22   # twenty-two\n\nL1::96#no space\nshmem::64\nwarp_size::32\n\n`);
  assert.deepEqual(warnings, []);
  assert.deepEqual(hw, { name: 'g', sms: 22, l1BytesPerSm: 96 * KiB, shmemBytesPerSm: 64 * KiB, warpSize: 32 });
});

test('cfg: a free-text line is warned about with file:line, cut to 60 characters', () => {
  const sixty = 'x'.repeat(60);
  const { warnings } = quiet(`${required}${sixty}\n${sixty}yz\n`);
  assert.deepEqual(warnings, [
    `g.cfg:5: skipped a line without 'key::value': '${sixty}'`,
    `g.cfg:6: skipped a line without 'key::value': '${sixty}...'`,
  ]);
});

test('cfg: without a warn callback the warning goes to stderr, prefixed', () => {
  const written: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => { written.push(String(chunk)); return true; }) as typeof process.stderr.write;
  try {
    parseHwCfg(`${required}free text\n`, 'g.cfg');
  } finally {
    process.stderr.write = write;
  }
  assert.deepEqual(written, ["fcm-opt: warning: g.cfg:5: skipped a line without 'key::value': 'free text'\n"]);
});

test('cfg: keys and names', () => {
  assert.equal(parseHwCfg(`NAME:: Big GPU \n${required}`, 'g.cfg').name, 'Big GPU');
  assert.equal(parseHwCfg(required, 'dir/some.gpu.cfg').name, 'some.gpu');
  fails(() => parseHwCfg(`${required}name::\n`, 'g.cfg'), 'g.cfg:5: empty name');
  fails(() => parseHwCfg(`${required}name::  # none\n`, 'g.cfg'), 'g.cfg:5: empty name');
  fails(() => parseHwCfg(`${required} :: 5\n`, 'g.cfg'), "g.cfg:5: empty key in ':: 5'");
  fails(() => parseHwCfg(`${required}  Warp_Size :: 16\n`, 'g.cfg'), "g.cfg:5: key 'Warp_Size' repeats line 4");
  fails(() => parseHwCfg(`name::a\n${required}Name::b\n`, 'g.cfg'), "g.cfg:6: key 'Name' repeats line 1");
  fails(() => parseHwCfg(`${required} L3 ::1\n`, 'g.cfg'),
    "g.cfg:5: unknown key 'L3' (known: name, sms, l1, shmem, warp_size, l2, dram_gbps, fp32_gflops, dispatch_us, parallel_outputs, "
    + 'pwdw_time_factor, dwpw_time_factor, pwpw_time_factor, int8_time_factor, kernel_floor_us, fcm_channel_ns, workgroup_storage, pwdw_max_halo; see hw_configs/README.md)');
});

test('cfg: each required key is required, and the error is at the end of the file', () => {
  const lines = required.trim().split('\n');
  const keys = ['sms', 'l1', 'shmem', 'warp_size'];
  lines.forEach((_, i) => {
    const text = lines.filter((__, j) => j !== i).join('\n');
    fails(() => parseHwCfg(text, 'g.cfg'), `g.cfg:3: missing required key ${keys[i]} (end of file)`);
  });
  fails(() => parseHwCfg('SMs::22\n', 'g.cfg'), 'g.cfg:2: missing required keys l1, shmem, warp_size (end of file)');
});

test('cfg: values must be positive numbers; counts whole; KiB sizes whole bytes', () => {
  const bad = (line: string, message: string) => fails(() => parseHwCfg(`${required}${line}\n`, 'g.cfg'), `g.cfg:5: ${message}`);
  for (const v of ['', '0', '-3', 'abc', 'Infinity', '-Infinity', 'NaN', '1e999']) bad(`L2::${v}`, `'L2' must be a positive number, got '${v}'`);
  // Counts: SMs, warp_size, parallel_outputs, pwdw_max_halo.
  bad(' L2 :: 0 ', "'L2' must be a positive number, got '0'");
  bad(' Parallel_Outputs :: 1000.5', "'Parallel_Outputs' must be a whole number, got '1000.5'");
  bad('pwdw_max_halo::511.9', "'pwdw_max_halo' must be a whole number, got '511.9'");
  fails(() => parseHwCfg('SMs::22\nL1::96\nshmem::64\nwarp_size::32.5\n', 'g.cfg'), "g.cfg:4: 'warp_size' must be a whole number, got '32.5'");
  // KiB: a fraction is fine while it is a whole number of bytes (0.5 KiB = 512 B); 1/1024 KiB is 1 B.
  const hw = quiet(`${required}L2::0.5\nworkgroup_storage::0.0009765625\n`).hw;
  assert.equal(hw.l2Bytes, 512);
  assert.equal(hw.workgroupStorageBytes, 1);
  bad(' l2 ::0.1', "'l2' (KiB) must be a whole number of bytes, got '0.1'");
  fails(() => parseHwCfg('SMs::22\nL1::96.0001\nshmem::64\nwarp_size::32\n', 'g.cfg'), "g.cfg:2: 'L1' (KiB) must be a whole number of bytes, got '96.0001'");
  fails(() => parseHwCfg('SMs::22\nL1::96\nshmem::0.3\nwarp_size::32\n', 'g.cfg'), /^g\.cfg:3: 'shmem' \(KiB\) must be a whole number of bytes/);
  // Plain numbers (bandwidth, throughput, dispatch cost, time factors) may be fractional, and huge.
  const numbers = quiet(`${required}dram_GBps::0.5\nfp32_GFLOPS::1e12\ndispatch_us::2.25\npwdw_time_factor::1.5\ndwpw_time_factor::0.75\npwpw_time_factor::1.25\n`).hw;
  assert.deepEqual(numbers, {
    name: 'g', sms: 22, l1BytesPerSm: 96 * KiB, shmemBytesPerSm: 64 * KiB, warpSize: 32,
    dramGBps: 0.5, fp32Gflops: 1e12, dispatchOverheadUs: 2.25, pwdwTimeFactor: 1.5, dwpwTimeFactor: 0.75, pwpwTimeFactor: 1.25,
  });
  assert.deepEqual(quiet(`${required}parallel_outputs::60000\npwdw_max_halo::512\nL2::1024\n`).hw, {
    name: 'g', sms: 22, l1BytesPerSm: 96 * KiB, shmemBytesPerSm: 64 * KiB, warpSize: 32, parallelOutputs: 60000, pwdwMaxHalo: 512, l2Bytes: KiB * KiB,
  });
});

test('shared memory may equal L1, not exceed it (both formats)', () => {
  assert.equal(parseHwCfg('SMs::1\nL1::64\nshmem::64\nwarp_size::32\n', 'g.cfg').shmemBytesPerSm, 64 * KiB);
  fails(() => parseHwCfg('SMs::1\nL1::64\nshmem::64.5\nwarp_size::32\n', 'g.cfg'), 'g.cfg: shared memory (66048 B) exceeds L1 (65536 B) per SM');
  const ok = { sms: 4, l1BytesPerSm: 65536, shmemBytesPerSm: 65536, warpSize: 16 };
  assert.equal(parseHwJson(JSON.stringify(ok), 'a.json').shmemBytesPerSm, 65536);
  fails(() => parseHwJson(JSON.stringify({ ...ok, shmemBytesPerSm: 65537 }), 'a.json'), 'a.json: shared memory (65537 B) exceeds L1 (65536 B) per SM');
});

test('json: a name, when given, must be a non-empty string and is kept', () => {
  const ok = { sms: 4, l1BytesPerSm: 65536, shmemBytesPerSm: 32768, warpSize: 16 };
  assert.equal(parseHwJson(JSON.stringify({ name: 'My GPU', ...ok }), 'dir/x.json').name, 'My GPU');
  for (const name of ['', 5, null]) fails(() => parseHwJson(JSON.stringify({ ...ok, name }), 'a.json'), "a.json: key 'name' must be a non-empty string");
});

test('json: a JSON object of positive numbers; whole numbers except rates and factors', () => {
  const ok = { sms: 4, l1BytesPerSm: 65536, shmemBytesPerSm: 32768, warpSize: 16 };
  for (const text of ['null', '5', '"h100"', '[]']) fails(() => parseHwJson(text, 'a.json'), 'a.json: a hardware description must be a JSON object');
  for (const v of ['0', '-1', '1e999', '"4"', 'null', 'true']) fails(() => parseHwJson(`{"sms": 4, "l1BytesPerSm": 65536, "shmemBytesPerSm": 32768, "warpSize": 16, "l2Bytes": ${v}}`, 'a.json'), "a.json: key 'l2Bytes' must be a positive number");
  for (const key of ['sms', 'l1BytesPerSm', 'shmemBytesPerSm', 'warpSize', 'l2Bytes', 'parallelOutputs', 'pwdwMaxHalo', 'workgroupStorageBytes']) {
    fails(() => parseHwJson(JSON.stringify({ ...ok, [key]: 1000.5 }), 'a.json'), `a.json: key '${key}' must be a whole number`);
  }
  const rates = { dramGBps: 204.8, fp32Gflops: 5300.5, dispatchOverheadUs: 0.5, pwdwTimeFactor: 1.33, dwpwTimeFactor: 2.5, pwpwTimeFactor: 0.9 };
  assert.deepEqual(parseHwJson(JSON.stringify({ ...ok, ...rates }), 'r.json'), { ...ok, ...rates, name: 'r' });
  fails(() => parseHwJson(JSON.stringify({ ...ok, L2: 1 }), 'a.json'),
    "a.json: unknown key 'L2' (known: name, sms, l1BytesPerSm, shmemBytesPerSm, warpSize, l2Bytes, dramGBps, fp32Gflops, dispatchOverheadUs, "
    + 'parallelOutputs, pwdwTimeFactor, dwpwTimeFactor, pwpwTimeFactor, int8TimeFactor, kernelFloorUs, fcmChannelNs, pwdwMaxHalo, workgroupStorageBytes; see hw_configs/README.md)');
  for (const key of Object.keys(ok)) {
    const rest: Record<string, number> = { ...ok };
    delete rest[key];
    fails(() => parseHwJson(JSON.stringify(rest), 'a.json'), `a.json: missing required key ${key}`);
  }
});

test('loadHw: a path with a folder or an extension is a file; a bare word is a shipped name unless such a file exists', () => {
  fails(() => loadHw('no/such/gpu'), 'no/such/gpu: cannot read (ENOENT: no such file)');
  fails(() => loadHw('absent.cfg'), 'absent.cfg: cannot read (ENOENT: no such file)');
  fails(() => loadHw('absent'), `absent: no such hardware description (a .cfg/.json path, 'auto', or one of: ${shippedHwNames().join(', ')})`);
  assert.deepEqual(shippedHwNames(), ['gtx1660', 'h100', 'h100-datasheet', 'lavapipe', 'orin', 'rtxa4000']);
  // A bare name shows as hw_configs/NAME.cfg in messages, wherever the process runs.
  const dir = mkdtempSync(join(tmpdir(), 'fcm-hw-parse-'));
  const cwd = process.cwd();
  try {
    process.chdir(dir);
    assert.equal(loadHw('orin').sms, 16);
    assert.equal(hwConfigsDir(), join(cwd, 'hw_configs'));
    // An extension-less file in the working directory is read as a .cfg.
    writeFileSync(join(dir, 'mygpu'), 'SMs::3\nL1::64\nshmem::32\nwarp_size::32\n');
    assert.deepEqual(loadHw('mygpu'), { name: 'mygpu', sms: 3, l1BytesPerSm: 64 * KiB, shmemBytesPerSm: 32 * KiB, warpSize: 32 });
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'bad.cfg'), 'SMs::0\n');
    fails(() => loadHw('sub/bad.cfg'), "sub/bad.cfg:1: 'SMs' must be a positive number, got '0'");
    writeFileSync(join(dir, 'sub', 'BIG.JSON'), '{"sms": 1, "l1BytesPerSm": 1024, "shmemBytesPerSm": 1024, "warpSize": 4}');
    assert.equal(loadHw('sub/BIG.JSON').name, 'BIG');
  } finally {
    process.chdir(cwd);
  }
});

test('loadHw auto: needs the adapter; with it, the known GPU and the adapter limit', () => {
  fails(() => loadHw('auto'), '--hw auto: no WebGPU adapter information was given; pass --hw with a file or a name', 'unsupported');
  const hw = loadHw('auto', { adapter: { info: { description: 'NVIDIA H100 PCIe' }, limits: { maxComputeWorkgroupStorageSize: 16384 } } });
  assert.deepEqual(hw, { ...loadHw('h100'), workgroupStorageBytes: 16384 });
});

const limits = { maxComputeWorkgroupStorageSize: 32768 };

test('hwFromAdapter: the datasheet figures of the known GPUs without a shipped description', () => {
  const MiB = KiB * KiB;
  const known = (description: string): HwConfig => hwFromAdapter({ description }, limits);
  assert.deepEqual(known('NVIDIA A100-SXM4-80GB'), { name: 'a100', sms: 108, l1BytesPerSm: 192 * KiB, shmemBytesPerSm: 164 * KiB, warpSize: 32, l2Bytes: 40 * MiB, dramGBps: 1555, fp32Gflops: 19500, workgroupStorageBytes: 32768 });
  assert.deepEqual(known('NVIDIA GeForce RTX 4090'), { name: 'rtx4090', sms: 128, l1BytesPerSm: 128 * KiB, shmemBytesPerSm: 100 * KiB, warpSize: 32, l2Bytes: 72 * MiB, dramGBps: 1008, fp32Gflops: 82600, workgroupStorageBytes: 32768 });
  // GA104: 48 SMs (the FusePlanner reference's rtxa4000.cfg says 96).
  assert.deepEqual(known('NVIDIA RTX A4000'), { name: 'rtxa4000', sms: 48, l1BytesPerSm: 128 * KiB, shmemBytesPerSm: 100 * KiB, warpSize: 32, l2Bytes: 4 * MiB, dramGBps: 448, fp32Gflops: 19200, workgroupStorageBytes: 32768 });
  assert.deepEqual(known('NVIDIA GeForce GTX 1660 Ti'), { name: 'gtx1660', sms: 22, l1BytesPerSm: 96 * KiB, shmemBytesPerSm: 64 * KiB, warpSize: 32, l2Bytes: 1536 * KiB, dramGBps: 192, fp32Gflops: 5000, workgroupStorageBytes: 32768 });
  assert.deepEqual(known('NVIDIA Orin (nvgpu)'), { name: 'orin', sms: 16, l1BytesPerSm: 192 * KiB, shmemBytesPerSm: 164 * KiB, warpSize: 32, l2Bytes: 4 * MiB, dramGBps: 204.8, fp32Gflops: 5300, workgroupStorageBytes: 32768 });
  // Names with or without a space before the number, any case; the GA10B chip name is the Orin.
  for (const [d, name] of [['NVIDIA GeForce RTX4090', 'rtx4090'], ['nvidia rtx  a4000', 'rtxa4000'], ['GTX1660 SUPER', 'gtx1660'], ['ga10b', 'orin']]) {
    assert.equal(known(d).name, name, d);
  }
  // Whole words only: an H1000 or A1000 is not an H100 or A100.
  fails(() => known('Acme H1000'), /unknown GPU/, 'unsupported');
  fails(() => known('NVIDIA RTX A1000'), /unknown GPU/, 'unsupported');
});

test('hwFromAdapter: the adapter\'s strings in order, its subgroup size as the warp, and its refusals', () => {
  // device and architecture are matched too, not only the description.
  assert.equal(hwFromAdapter({ vendor: 'nvidia', device: 'H100 80GB HBM3' }, limits).name, 'h100');
  assert.equal(hwFromAdapter({ vendor: 'mesa', architecture: 'llvmpipe' }, limits).name, 'lavapipe');
  // A whole subgroup size replaces the table's warp size; anything else keeps it.
  assert.equal(hwFromAdapter({ description: 'llvmpipe', subgroupMaxSize: 16 }, limits).warpSize, 16);
  assert.equal(hwFromAdapter({ description: 'llvmpipe', subgroupMaxSize: 0 }, limits).warpSize, 8);
  assert.equal(hwFromAdapter({ description: 'llvmpipe', subgroupMaxSize: 16.5 }, limits).warpSize, 8);
  assert.equal(hwFromAdapter({ description: 'llvmpipe' }, limits).warpSize, 8);
  fails(() => hwFromAdapter({}, limits), "--hw auto: unknown GPU 'no adapter description'; pass --hw with a .cfg or .json description (hw_configs/README.md)", 'unsupported');
  fails(() => hwFromAdapter({ description: 'Acme', device: '', architecture: 'x1', vendor: 'acme' }, limits), /^--hw auto: unknown GPU 'Acme x1 acme';/, 'unsupported');
  for (const v of [0, -1, 1.5, Number.NaN, undefined]) {
    fails(() => hwFromAdapter({ description: 'NVIDIA H100' }, { maxComputeWorkgroupStorageSize: v as unknown as number }), `--hw auto: adapter limit maxComputeWorkgroupStorageSize is ${String(v)}`);
  }
});
