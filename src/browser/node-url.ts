// node:url in the browser build: module URLs are http(s) there, not files; the shipped hardware files are not in it.
import { unsupported } from '../errors.js';

export function fileURLToPath(url: string | URL): string {
  throw unsupported(String(url), 'the browser build has no files: --hw takes \'auto\' or a HwConfig there');
}
