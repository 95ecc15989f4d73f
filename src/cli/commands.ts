// The subcommands, one module each. Add a line here when adding a command.
import type { Command } from 'commander';
import { register as registerPlan } from './plan.js';
import { register as registerDag } from './dag.js';
import { register as registerBench } from './bench.js';
import { register as registerReport } from './report.js';
import { register as registerRun } from './run.js';
import { register as registerCheck } from './check.js';

export const commands: Array<(program: Command) => void> = [
  registerPlan,
  registerDag,
  registerBench,
  registerReport,
  registerRun,
  registerCheck,
];
