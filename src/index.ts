// The library API.
export * from './errors.js';
export * from './graph/ir.js';
