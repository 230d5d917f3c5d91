/** Path helpers for core modules, which import no Node built-in outside core/io. */
export { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
