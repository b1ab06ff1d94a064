/**
 * `npm start`: builds the local runtime (local/build.ts) and runs it in this process. tsx only loads the build
 * script; the runtime itself runs as plain JavaScript, as on Lambda.
 *
 * package.json runs this with --max-semi-space-size=8 (V8's default is 16 MB, and it can only be set when node
 * starts): the thread serving requests keeps little of what it allocates, and the smaller young generation took
 * 13-15 MB off the runtime's peak RSS sequentially and 20 MB at 32 concurrent, with latency and CPU per request
 * unchanged within noise (three alternating sequential runs of 3,000 requests, two at 32 concurrent). The bench
 * runs the gateway with the same flags.
 */
const { join } = require('node:path');
const tsx = require('tsx/cjs/api');

const unregister = tsx.register();
const { buildLocalRuntime, LOCAL_BUILD_ROOT } = require('./build.ts');
unregister();

buildLocalRuntime(join(__dirname, 'main.ts'), join(LOCAL_BUILD_ROOT, 'start'))
  .then((main) => require(main))
  .catch((err) => {
    console.error(`Failed to build the local runtime: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
