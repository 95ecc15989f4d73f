// The subcommands, one module each. Add a line here when adding a command.
import type { Command } from 'commander';

export const commands: Array<(program: Command) => void> = [
];
