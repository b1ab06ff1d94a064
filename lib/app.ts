import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { NorthernInferenceStack, STACK_NAME, stackProps } from './stack';

/** The CDK app: the stack, checked by cdk-nag's AWS Solutions rules on every synth (violations fail it). */
export function buildApp(app: App, env: NodeJS.ProcessEnv = process.env): NorthernInferenceStack {
  const stack = new NorthernInferenceStack(app, STACK_NAME, stackProps(env));
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return stack;
}
