import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { settings, stackNameFor } from './settings';
import { NorthernInferenceStack, stackProps } from './stack';

/** The CDK app: the stage's stack, checked by cdk-nag's AWS Solutions rules on every synth (violations fail it). */
export function buildApp(app: App, env: NodeJS.ProcessEnv = process.env): NorthernInferenceStack {
  const { stage } = settings(app);
  const stack = new NorthernInferenceStack(app, stackNameFor(stage), stackProps(env, stage));
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return stack;
}
