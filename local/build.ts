import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { MAIN_FIELDS, PROJECT_ROOT } from '../lib/esbuild';

/*
 * The local runtime runs bundled, as the Lambdas do: one file per thread, dependencies included. Besides being
 * the shape Lambda runs, it is measurably lighter than running the TypeScript sources through tsx, whose
 * require hook the AWS SDK pays on every ConverseStream call (the SDK requires its event-stream module per
 * call) and whose loader thread costs memory.
 */

/** Inside node_modules so the bundle resolves `dynalite` (kept external: it loads a native LevelDB binding). */
export const LOCAL_BUILD_ROOT = join(PROJECT_ROOT, 'node_modules', '.cache', 'ni-local');

/** The node flags `npm start` runs the runtime with (package.json; see start.js), for the bench and tests to match. */
export const START_FLAGS: string[] = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')).scripts.start as string)
  .split(' ').filter((arg) => arg.startsWith('--'));

/**
 * Bundles `entry` (the program: local/main.ts, or the bench's server) as `main.js` in `outdir`, with what runs on
 * the store's thread beside it (local/store-thread.ts loads it from there). Returns the path of `main.js`.
 */
export async function buildLocalRuntime(entry: string, outdir: string): Promise<string> {
  await build({
    entryPoints: { main: resolve(entry), 'store-thread-entry': join(__dirname, 'store-thread-entry.ts') },
    outdir,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${process.versions.node.split('.')[0]}`,
    mainFields: MAIN_FIELDS,
    external: ['dynalite', 'tsx'], // tsx: only used when running from sources
    // Readable stack traces without source maps. Not keepNames: unminified code keeps its names already, and the
    // helper it injects ran on every closure the SDK and the handlers create per request.
    minify: false,
    logLevel: 'warning',
  });
  return join(outdir, 'main.js');
}
