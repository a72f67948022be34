// Test helpers for configuration: load to a Config or to the one-line error a bad value gives.
import { loadConfig, type Config, type Environment } from "../../src/config/load.ts";
import { isProxyError } from "../../src/errors.ts";

export function load(argv: string[] = [], env: Environment = {}): Config {
  const result = loadConfig(argv, env);
  if (result.kind !== "run") throw new Error(`expected run, got ${result.kind}`);
  return result.config;
}

export function errorOf(argv: string[], env: Environment = {}): string {
  try {
    loadConfig(argv, env);
  } catch (error) {
    if (isProxyError(error, "config_invalid")) return error.message;
    throw error;
  }
  throw new Error(`expected a configuration error for ${JSON.stringify(argv)} ${JSON.stringify(env)}`);
}
