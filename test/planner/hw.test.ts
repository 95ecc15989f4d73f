import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FcmError } from '../../src/errors.js';
import { hwFromAdapter, knownGpus, loadHw, parseHwCfg, parseHwJson, shippedHwNames } from '../../src/planner/hw.js';

const KiB = 1024;

function fails(fn: () => unknown, kind: FcmError['kind'], pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FcmError, `expected FcmError, got ${String(e)}`);
    assert.equal(e.kind, kind);
    assert.match(e.message, pattern);
    return true;
  });
}

test('the FusePlanner reference cfg files parse to their values (KiB -> bytes)', () => {
  assert.deepEqual(loadHw('gtx1660'), { name: 'gtx1660', sms: 22, l1BytesPerSm: 96 * KiB, shmemBytesPerSm: 64 * KiB, warpSize: 32 });
  assert.deepEqual(loadHw('orin'), { name: 'orin', sms: 16, l1BytesPerSm: 192 * KiB, shmemBytesPerSm: 164 * KiB, warpSize: 32 });
  assert.deepEqual(loadHw('rtxa4000'), { name: 'rtxa4000', sms: 96, l1BytesPerSm: 128 * KiB, shmemBytesPerSm: 100 * KiB, warpSize: 32 });
  // The shipped copies are byte-identical to the FusePlanner reference's (the reference estimates were made with them).
  for (const name of ['gtx1660', 'orin', 'rtxa4000']) {
    assert.ok(readFileSync(`hw_configs/${name}.cfg`, 'utf8').startsWith('SMs::'), name);
  }
});

test('h100.cfg has the optional keys, and h100.json is the same description', () => {
  const h100 = loadHw('h100');
  assert.deepEqual(h100, {
    name: 'h100', sms: 132, l1BytesPerSm: 256 * KiB, shmemBytesPerSm: 228 * KiB, warpSize: 32, l2Bytes: 50 * KiB * KiB,
    dramGBps: 4500, fp32Gflops: 13500, dispatchOverheadUs: 3.5, kernelFloorUs: 1, parallelOutputs: 60000, pwdwTimeFactor: 1.5, dwpwTimeFactor: 4,
    pwpwTimeFactor: 1.33, fcmChannelNs: 35, int8TimeFactor: 5, pwdwMaxHalo: 512, workgroupStorageBytes: 48 * KiB,
  });
  assert.deepEqual(loadHw('hw_configs/h100.json'), h100);
  assert.deepEqual(loadHw('hw_configs/h100.cfg'), h100);
  assert.equal(loadHw('lavapipe').workgroupStorageBytes, 32 * KiB);
  for (const name of ['gtx1660', 'h100', 'lavapipe', 'orin', 'rtxa4000']) assert.ok(shippedHwNames().includes(name), name);
  assert.equal(shippedHwNames().filter((n) => n === 'h100').length, 1, 'h100.cfg and h100.json listed once');
});

test('cfg: comments, spaces, case-insensitive keys and a name key', () => {
  const hw = parseHwCfg('# a GPU\n name :: My GPU \nsms :: 10  # ten\nl1::64\r\nSHMEM::48\nWarp_Size::32\n\nDRAM_GBPS::900.5\n', 'x.cfg');
  assert.deepEqual(hw, { name: 'My GPU', sms: 10, l1BytesPerSm: 64 * KiB, shmemBytesPerSm: 48 * KiB, warpSize: 32, dramGBps: 900.5 });
});

test('cfg: a free-text line is skipped with a warning naming file and line', () => {
  const warnings: string[] = [];
  const hw = parseHwCfg('SMs::16\nL1::192\nJetson AGX Orin 64GB developer kit\nshmem::164\nwarp_size::32', 'orin.cfg', { warn: (m) => warnings.push(m) });
  assert.equal(hw.sms, 16);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /^orin\.cfg:3: skipped a line without 'key::value'/);
});

test('cfg: unknown key, missing key, bad values and repeats are errors with file and line (exit 2)', () => {
  const base = 'SMs::22\nL1::96\nshmem::64\nwarp_size::32\n';
  fails(() => parseHwCfg(`${base}L3::1024\n`, 'g.cfg'), 'invalid', /^g\.cfg:5: unknown key 'L3'/);
  fails(() => parseHwCfg(`${base}constructor::1\n`, 'g.cfg'), 'invalid', /^g\.cfg:5: unknown key 'constructor'/);
  fails(() => parseHwCfg('SMs::22\nL1::96\nwarp_size::32\n', 'g.cfg'), 'invalid', /^g\.cfg:\d+: missing required key shmem/);
  fails(() => parseHwCfg('L1::96\n', 'g.cfg'), 'invalid', /missing required keys sms, shmem, warp_size/);
  fails(() => parseHwCfg('SMs::many\nL1::96\nshmem::64\nwarp_size::32\n', 'g.cfg'), 'invalid', /^g\.cfg:1: 'SMs' must be a positive number/);
  fails(() => parseHwCfg('SMs::2.5\nL1::96\nshmem::64\nwarp_size::32\n', 'g.cfg'), 'invalid', /^g\.cfg:1: 'SMs' must be a whole number/);
  fails(() => parseHwCfg('SMs::-1\nL1::96\nshmem::64\nwarp_size::32\n', 'g.cfg'), 'invalid', /g\.cfg:1/);
  fails(() => parseHwCfg(`${base}sms::4\n`, 'g.cfg'), 'invalid', /^g\.cfg:5: key 'sms' repeats line 1/);
  fails(() => parseHwCfg('SMs::22::3\n', 'g.cfg'), 'invalid', /^g\.cfg:1: more than one '::'/);
  fails(() => parseHwCfg('SMs::22\nL1::64\nshmem::96\nwarp_size::32\n', 'g.cfg'), 'invalid', /shared memory .* exceeds L1/);
  const e = (() => { try { parseHwCfg('x::1', 'g.cfg'); } catch (err) { return err as FcmError; } })();
  assert.equal(e?.exitCode, 2);
});

test('json: the HwConfig fields; unknown, missing and mistyped keys are errors', () => {
  const ok = { sms: 4, l1BytesPerSm: 65536, shmemBytesPerSm: 32768, warpSize: 16 };
  assert.deepEqual(parseHwJson(JSON.stringify(ok), 'dir/small.json'), { ...ok, name: 'small' });
  fails(() => parseHwJson(JSON.stringify({ ...ok, l1: 64 }), 'a.json'), 'invalid', /^a\.json: unknown key 'l1'/);
  fails(() => parseHwJson(JSON.stringify({ sms: 4 }), 'a.json'), 'invalid', /missing required keys l1BytesPerSm, shmemBytesPerSm, warpSize/);
  fails(() => parseHwJson(JSON.stringify({ ...ok, sms: '4' }), 'a.json'), 'invalid', /key 'sms' must be a positive number/);
  fails(() => parseHwJson(JSON.stringify({ ...ok, l2Bytes: 1.5 }), 'a.json'), 'invalid', /'l2Bytes' must be a whole number/);
  fails(() => parseHwJson('{ "sms": 4', 'a.json'), 'invalid', /^a\.json: not valid JSON/);
  fails(() => parseHwJson('[1]', 'a.json'), 'invalid', /must be a JSON object/);
});

test('loadHw: paths, bare names, unknown names, missing files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-hw-'));
  const cfg = join(dir, 'mine.cfg');
  writeFileSync(cfg, 'SMs::2\nL1::32\nshmem::16\nwarp_size::32\n');
  assert.equal(loadHw(cfg).name, 'mine');
  fails(() => loadHw('no-such-gpu'), 'invalid', /^no-such-gpu: no such hardware description .*h100/);
  fails(() => loadHw(join(dir, 'absent.cfg')), 'invalid', /absent\.cfg: cannot read \(ENOENT: no such file\)/);
  fails(() => loadHw(dir), 'invalid', /is a folder, not a regular file/);
  fails(() => loadHw('auto'), 'unsupported', /--hw auto/);
});

test('hwFromAdapter: known GPUs by adapter strings, workgroup storage from the limits', () => {
  const h100 = hwFromAdapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H100 80GB HBM3' }, { maxComputeWorkgroupStorageSize: 49152 });
  assert.deepEqual(h100, loadHw('h100'));
  // The H200 is the H100's chip: the same description (the calibration was measured on one).
  assert.deepEqual(hwFromAdapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H200' }, { maxComputeWorkgroupStorageSize: 49152 }), h100);
  const lvp = hwFromAdapter({ vendor: 'mesa', architecture: '', device: '', description: 'llvmpipe (LLVM 19.1.7, 256 bits)' }, { maxComputeWorkgroupStorageSize: 32768 });
  assert.deepEqual(lvp, loadHw('lavapipe'));
  const a100 = hwFromAdapter({ description: 'NVIDIA A100-SXM4-40GB' }, { maxComputeWorkgroupStorageSize: 16384, maxBufferSize: 1 });
  assert.equal(a100.sms, 108);
  assert.equal(a100.workgroupStorageBytes, 16384);
  assert.equal(hwFromAdapter({ description: 'NVIDIA GeForce RTX 4090' }, { maxComputeWorkgroupStorageSize: 32768 }).name, 'rtx4090');
  assert.equal(hwFromAdapter({ description: 'NVIDIA RTX A4000' }, { maxComputeWorkgroupStorageSize: 32768 }).name, 'rtxa4000');
  assert.equal(hwFromAdapter({ description: 'NVIDIA GeForce GTX 1660 SUPER' }, { maxComputeWorkgroupStorageSize: 32768 }).name, 'gtx1660');
  assert.equal(hwFromAdapter({ description: 'NVIDIA Tegra Orin (nvgpu)' }, { maxComputeWorkgroupStorageSize: 32768 }).name, 'orin');
  assert.equal(hwFromAdapter({ description: 'NVIDIA H100', subgroupMaxSize: 32 }, { maxComputeWorkgroupStorageSize: 32768 }).warpSize, 32);
  fails(() => hwFromAdapter({ vendor: 'acme', description: 'Acme GPU 9000' }, { maxComputeWorkgroupStorageSize: 32768 }), 'unsupported', /unknown GPU 'Acme GPU 9000 acme'/);
  fails(() => hwFromAdapter({ description: 'NVIDIA H100' }, { maxComputeWorkgroupStorageSize: 0 }), 'invalid', /maxComputeWorkgroupStorageSize/);
});

test('the known-GPU table agrees with the shipped cfg files (except the FusePlanner reference\'s RTX A4000 SM count)', () => {
  for (const name of ['h100', 'gtx1660', 'orin', 'lavapipe']) {
    const entry = knownGpus.find((g) => g.hw.name === name);
    assert.ok(entry, name);
    const cfg = loadHw(name);
    for (const [k, v] of Object.entries(cfg)) {
      if (k === 'workgroupStorageBytes') continue; // comes from the adapter's limits
      assert.equal((entry.hw as unknown as Record<string, unknown>)[k], v, `${name}.${k}`);
    }
  }
  const a4000 = knownGpus.find((g) => g.hw.name === 'rtxa4000')!.hw;
  const seed = loadHw('rtxa4000');
  assert.equal(a4000.l1BytesPerSm, seed.l1BytesPerSm);
  assert.equal(a4000.shmemBytesPerSm, seed.shmemBytesPerSm);
});
