/**
 * Loads an application module named on the command line: its default export must be an
 * app made with `defineApp`.
 * @module
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { App } from "../app/app.ts";

/** The module could not be loaded or does not export an app. */
export class AppModuleError extends Error {
  override readonly name = "AppModuleError";
}

/** Imports `path` and returns its default export, checked to look like an app. */
export async function loadApp(path: string): Promise<App> {
  let module: { default?: unknown };
  try {
    module = await import(pathToFileURL(resolve(path)).href);
  } catch (error) {
    throw new AppModuleError(`cannot load the application ${path}: ${(error as Error).message}`);
  }
  const app = module.default as Partial<App> | undefined;
  if (app === undefined || typeof app !== "object" || typeof app.apply !== "function" || typeof app.genesis !== "function") {
    throw new AppModuleError(`${path} must export default defineApp({ genesis, apply, query })`);
  }
  return app as App;
}
