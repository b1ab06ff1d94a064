#!/usr/bin/env node
// `npx ni …`: run the TypeScript CLI through tsx (installed with the project), no build step.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // Node 20 is supported locally
require('tsx/cjs');
require('./ni.ts').main(process.argv.slice(2)).then((code) => process.exit(code), (err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
