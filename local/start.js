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
 * - --v8-pool-size=1 (node's default is 4 whatever the machine): the thread that helps V8 collect and compile
 *   for both isolates. Its work comes in bursts: after each full collection V8 compiles again the optimized code
 *   of per-call closures (the SDK's middleware, dynalite's parser), some 50 functions at once. On 2 cores,
 *   beside the request and store threads, more helpers only took turns with the work they helped: 4 -> 2 took
 *   4-10% off the CPU per request and 8 MB off peak RSS at 32 concurrent; 2 -> 1 took 2-15% more off the CPU
 *   and 0.4-1 ms off the sequential p99 (three alternating pairs of 3,000 requests); requests/s at 32 and
 *   peak RSS moved within the bench's run-to-run noise.
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
