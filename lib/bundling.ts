import * as path from 'node:path';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { OutputFormat, type BundlingOptions, type NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';
import { ROUTES, type RouteSpec } from '../lambdas/routes';
import { ALIAS, MAIN_FIELDS, NODE_TARGET, PROJECT_ROOT } from './esbuild';

/**
 * How every Lambda is built. `npm run bench` bundles with `esbuildOptionsFor()` (esbuild.ts) so it measures the
 * same artifact the stack deploys; change both together, never one only.
 */
/** The route table's handlers and the two that no route names (the authorizer and the ledger writer). */
export type HandlerName = RouteSpec['handler'] | 'authorizer' | 'ledger-writer';
export const HANDLERS: readonly HandlerName[] = [...new Set(ROUTES.map((r) => r.handler)), 'authorizer', 'ledger-writer'];

export const handlerEntry = (name: HandlerName): string => path.join(PROJECT_ROOT, 'lambdas', 'handlers', `${name}.ts`);

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
  esbuildArgs: { '--alias': Object.entries(ALIAS).map(([pkg, replacement]) => `${pkg}=${replacement}`) },
} satisfies BundlingOptions;

export const FUNCTION_DEFAULTS = {
  runtime: Runtime.NODEJS_22_X,
  architecture: Architecture.ARM_64,
  bundling: BUNDLING,
  projectRoot: PROJECT_ROOT,
  depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
} satisfies NodejsFunctionProps;
