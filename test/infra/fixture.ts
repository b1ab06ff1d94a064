import * as fs from 'node:fs';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../lib/app';
import { PROJECT_ROOT } from '../../lib/esbuild';
import type { NorthernInferenceStack } from '../../lib/stack';

export const TEST_ACCOUNT = '123456789012';

/**
 * The app exactly as `cdk synth` builds it (cdk.json context, cdk-nag plugin), optionally without bundling, with
 * `context` as `cdk synth -c name=value` would add it.
 */
export function testApp({ bundle = false, context: extra = {} }: { bundle?: boolean; context?: Record<string, unknown> } = {}): { app: App; stack: NorthernInferenceStack } {
  const { context } = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
  // An empty bundling-stacks list makes every asset skip bundling (what `cdk ls`/`cdk diff -e` use).
  const app = new App({ context: { ...context, ...extra, ...(bundle ? {} : { 'aws:cdk:bundling-stacks': [] }) } });
  return { app, stack: buildApp(app, { CDK_DEFAULT_ACCOUNT: TEST_ACCOUNT }) };
}

/** Deletes the app's cloud assembly (a temp dir per App). */
export const removeAssembly = (app: App) => fs.rmSync(app.outdir, { recursive: true, force: true });

type Json = Record<string, unknown>;

/** A CloudFormation value as a string, intrinsics rendered as `${LogicalId}` / `${LogicalId.Attr}`. */
export function flatten(value: unknown): string {
  if (typeof value === 'string') return value;
  const o = value as Json;
  if (o && typeof o === 'object') {
    if ('Fn::Join' in o) {
      const [sep, parts] = o['Fn::Join'] as [string, unknown[]];
      return parts.map(flatten).join(sep);
    }
    if ('Ref' in o) return `\${${String(o.Ref)}}`;
    if ('Fn::GetAtt' in o) return `\${${(o['Fn::GetAtt'] as string[]).join('.')}}`;
  }
  throw new Error(`cannot flatten ${JSON.stringify(value)}`);
}

/** The one resource of `type` whose logical id starts with `prefix`. */
export function resource(template: Template, type: string, prefix: string): { id: string; props: Json; res: Json } {
  const matches = Object.entries(template.findResources(type)).filter(([id]) => id.startsWith(prefix));
  if (matches.length !== 1) throw new Error(`expected one ${type} starting with ${prefix}, found ${matches.map(([id]) => id).join(', ') || 'none'}`);
  const [id, res] = matches[0];
  return { id, props: (res.Properties ?? {}) as Json, res };
}

export interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

/** Every IAM policy statement in the template, with the logical ids of the roles it is attached to. */
export function policyStatements(template: Template): { roles: string[]; statement: Statement }[] {
  return Object.values(template.findResources('AWS::IAM::Policy')).flatMap((p) => {
    const props = p.Properties as { Roles: { Ref: string }[]; PolicyDocument: { Statement: Statement[] } };
    return props.PolicyDocument.Statement.map((statement) => ({ roles: props.Roles.map((r) => r.Ref), statement }));
  });
}

export const asList = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);
