// Preload (node --import, or NODE_OPTIONS=--import=...) that appends one line per compute pipeline created in this
// process to the file named by FCM_OPT_PIPELINE_LOG: a hash of its WGSL, the milliseconds createComputePipeline
// took (on lavapipe with a cold shader cache, mostly the LLVM compile), its label, the process (pid, argv) and the process's CPU seconds so far (the
// difference to the next line is about what the pipeline's first use cost: lavapipe compiles at the first dispatch).
// Used by scripts/test-cost.mjs to count what each test file compiles; not part of the product.
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { globals } from 'webgpu';

// A test may run the CLI as another user, who cannot write the log: such processes go unlogged.
function append(file, line) {
  try { appendFileSync(file, line); } catch { /* not writable for this process */ }
}

const log = process.env.FCM_OPT_PIPELINE_LOG;
const { GPUDevice } = globals;
// At exit, a line 'exit', its parent's pid, its pid, argv and CPU seconds: a whole suite's CPU per test file.
if (log && GPUDevice?.prototype && !GPUDevice.prototype.__pipelineLog) {
  const codes = new WeakMap();
  const { createShaderModule, createComputePipeline } = GPUDevice.prototype;
  GPUDevice.prototype.createShaderModule = function (desc) {
    const m = createShaderModule.call(this, desc);
    codes.set(m, desc.code);
    return m;
  };
  GPUDevice.prototype.createComputePipeline = function (desc) {
    const t = performance.now();
    const p = createComputePipeline.call(this, desc);
    const ms = performance.now() - t;
    const code = codes.get(desc.compute.module) ?? '';
    const h = createHash('sha1').update(code).digest('hex').slice(0, 12);
    if (process.env.FCM_OPT_PIPELINE_WGSL) {
      // Each distinct WGSL once, by hash, to see what a test compiled.
      const f = `${process.env.FCM_OPT_PIPELINE_WGSL}/${h}.wgsl`;
      try {
        if (!existsSync(f)) { mkdirSync(process.env.FCM_OPT_PIPELINE_WGSL, { recursive: true }); writeFileSync(f, code); }
      } catch { /* not writable for this process */ }
    }
    const cpu = process.cpuUsage();
    append(log, `${h}\t${ms.toFixed(1)}\t${desc.label ?? ''}\t${process.pid}\t${process.argv.slice(1).join(' ').slice(0, 120)}\t${((cpu.user + cpu.system) / 1e6).toFixed(2)}\n`);
    return p;
  };
  GPUDevice.prototype.__pipelineLog = true;
  process.on('exit', () => {
    const cpu = process.cpuUsage();
    append(log, `exit\t0\t${process.ppid}\t${process.pid}\t${process.argv.slice(1).join(' ').slice(0, 120)}\t${((cpu.user + cpu.system) / 1e6).toFixed(2)}\n`);
  });
}
