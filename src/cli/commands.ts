// The subcommands, one module each. Add a line here when adding a command.
import type { Command } from 'commander';
import { register as registerPlan } from './plan.js';
import { register as registerDag } from './dag.js';

export const commands: Array<(program: Command) => void> = [
  registerPlan,
  registerDag,
];
