/**
 * Environment variables for core modules, which may not touch Node's `process` outside core/io.
 * Writes go to the real process environment, so native libraries loaded later (EGL, Vulkan
 * loaders) see them too.
 */
import os from 'node:os';

/** The value of environment variable `name`, or undefined when it is unset. */
export function getEnv(name: string): string | undefined {
  return process.env[name];
}

/**
 * Sets `name` to `value` unless it is already set (to anything, even the empty string).
 * Returns true when it was set by this call.
 */
export function setEnvDefault(name: string, value: string): boolean {
  if (process.env[name] !== undefined) return false;
  process.env[name] = value;
  return true;
}

/** Node's platform name: 'linux', 'darwin', 'win32'… */
export function getPlatform(): string {
  return process.platform;
}

/** The user's home folder (for `~` in paths and the default caches). */
export function homeDir(): string {
  return os.homedir();
}
