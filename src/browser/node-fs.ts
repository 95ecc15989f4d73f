// node:fs in the browser build: no file system. Loading takes bytes there (loadBytes(url) fetches them); a path, an
// ONNX file's external data or a shipped hardware file name stops with this one message (exit-3 kind).
import { unsupported } from '../errors.js';

const none = (what: string) => (): never => {
  throw unsupported(what, 'files cannot be read in the browser build: give the model as bytes (loadBytes(url)) and --hw as \'auto\' or a HwConfig');
};

export const constants = { O_RDONLY: 0, O_NONBLOCK: 0, O_NOFOLLOW: 0 };
export const existsSync = (): boolean => false;
export const openSync = none('openSync');
export const closeSync = none('closeSync');
export const readSync = none('readSync');
export const fstatSync = none('fstatSync');
export const statSync = none('statSync');
export const lstatSync = none('lstatSync');
export const realpathSync = none('realpathSync');
export const readdirSync = none('readdirSync');
export const open = none('open');
