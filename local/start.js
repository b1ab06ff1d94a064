/**
 * `npm start`: builds the local runtime (local/build.ts) and runs it in this process. tsx only loads the build
 * script; the runtime itself runs as plain JavaScript, as on Lambda.
 *
 * package.json runs this with node flags that can only be given when node starts (the bench and the tests use the
 * same ones, from package.json):
 * - --max-semi-space-size=8 (half V8's default): the thread serving requests keeps little of what it allocates,
 *   so a smaller young generation saves memory without costing latency or CPU;
 * - --v8-pool-size=1 (node's default is 4 whatever the machine): V8's helper thread works in bursts (compiling
 *   again after each full collection); beside the request and store threads, more helpers would only take turns
 *   on the cores with the work they help.
 */
const { join } = require('node:path');
const tsx = require('tsx/cjs/api');

const unregister = tsx.register();
const { buildLocalRuntime, LOCAL_BUILD_ROOT } = require('./build.ts');
const { buildPortal } = require('../portal/build.ts');
unregister();

const outdir = join(LOCAL_BUILD_ROOT, 'start');
// The portal's pages beside the bundle, where its handler looks for them (lambdas/handlers/portal-assets.ts).
Promise.all([buildLocalRuntime(join(__dirname, 'main.ts'), outdir), buildPortal(join(outdir, 'portal'))])
  .then(([main]) => require(main))
  .catch((err) => {
    console.error(`Failed to build the local runtime: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
