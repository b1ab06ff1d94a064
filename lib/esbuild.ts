import { resolve } from 'node:path';
import type { BuildOptions } from 'esbuild';

/*
 * The esbuild side of how the Lambdas are built, free of CDK imports so that tools which only bundle (the bench,
 * the local runtime's build) load it without aws-cdk-lib. bundling.ts passes the same settings to NodejsFunction.
 */

export const PROJECT_ROOT = resolve(__dirname, '..');

export const NODE_TARGET = 'node22';
/** Prefer the ESM builds of dependencies: esbuild can only tree-shake what it sees as ES modules. */
export const MAIN_FIELDS = ['module', 'main'];

/**
 * Modules the Lambda bundles take in place of a dependency's (esbuild's `alias`, resolved from PROJECT_ROOT, where
 * NodejsFunction runs esbuild): the AWS SDK's default credential chain, by the part of it that Lambda uses, and
 * the SSO sign-in client, which nothing reaches in Lambda.
 */
export const ALIAS: Record<string, string> = {
  '@aws-sdk/credential-provider-node': './lambdas/lambda-credentials.ts',
  '@aws-sdk/nested-clients/sso-oidc': './lambdas/lambda-sso-oidc.ts',
};

/** The esbuild options NodejsFunction derives from BUNDLING (bundling.ts), for building the same bundle outside CDK. */
export function esbuildOptionsFor(entry: string): BuildOptions {
  return {
    absWorkingDir: PROJECT_ROOT,
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: NODE_TARGET,
    format: 'cjs',
    minify: true,
    sourcemap: false,
    mainFields: MAIN_FIELDS,
    external: [],
    alias: ALIAS,
  };
}
