/**
 * `npm start`: builds the local runtime (local/build.ts) and runs it in this process. tsx only loads the build
 * script; the runtime itself runs as plain JavaScript, as on Lambda.
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
