/**
 * `npm start`: builds the local runtime (local/build.ts) and runs it in this process. tsx only loads the build
 * script; the runtime itself runs as plain JavaScript, as on Lambda.
 *
 * package.json runs this with node flags that can only be given when node starts (the bench and the tests use the
 * same ones, from package.json):
 * - --max-semi-space-size=8 (V8's default is 16 MB): the thread serving requests keeps little of what it
 *   allocates, and the smaller young generation took 13-15 MB off the runtime's peak RSS sequentially and 20 MB
 *   at 32 concurrent, with latency and CPU per request unchanged within noise (three alternating sequential runs
 *   of 3,000 requests, two at 32 concurrent);
 * - --v8-pool-size=2 (node's default is 4 whatever the machine): the threads that help V8 collect and compile
 *   for both isolates. On 2 cores, beside the request and store threads, 4 of them took turns with the work
 *   they helped: with 2, CPU per request was 4-10% lower and peak RSS 8 MB lower at 32 concurrent, latency
 *   unchanged (five alternating pairs, three sequential and two at 32).
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
