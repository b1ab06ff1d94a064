import * as path from 'node:path';
import type { BuildOptions } from 'esbuild';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { OutputFormat, type BundlingOptions, type NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';

/**
 * How every Lambda is built. `npm run bench` bundles with `esbuildOptionsFor()` so it measures the same
 * artifact the stack deploys; change both here, never in one place only.
 */
export const HANDLERS = ['gateway', 'authorizer', 'billing', 'usage', 'ledger-writer'] as const;
export type HandlerName = (typeof HANDLERS)[number];

export const PROJECT_ROOT = path.resolve(__dirname, '..');
export const handlerEntry = (name: HandlerName): string => path.join(PROJECT_ROOT, 'lambdas', 'handlers', `${name}.ts`);

const NODE_TARGET = 'node22';
// Prefer the ESM builds of dependencies: esbuild can only tree-shake what it sees as ES modules.
const MAIN_FIELDS = ['module', 'main'];

export const BUNDLING = {
  minify: true,
  sourceMap: false,
  target: NODE_TARGET,
  format: OutputFormat.CJS,
  mainFields: MAIN_FIELDS,
  // Bundle the AWS SDK instead of using the runtime's copy: a pinned, self-contained artifact whose size and
  // cold start the bench measures, and no drift when Lambda updates its SDK.
  bundleAwsSDK: true,
  externalModules: [],
} satisfies BundlingOptions;

export const FUNCTION_DEFAULTS = {
  runtime: Runtime.NODEJS_22_X,
  architecture: Architecture.ARM_64,
  bundling: BUNDLING,
  projectRoot: PROJECT_ROOT,
  depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
} satisfies NodejsFunctionProps;

/** The esbuild options NodejsFunction derives from BUNDLING, for building the same bundle outside CDK. */
export function esbuildOptionsFor(entry: string): BuildOptions {
  return {
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: NODE_TARGET,
    format: 'cjs',
    minify: true,
    sourcemap: false,
    mainFields: MAIN_FIELDS,
    external: [],
  };
}
