import { Duration, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { NodejsFunction, type NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, SERVICE_NAME } from '../lambdas/core/metrics';
import { FUNCTION_DEFAULTS, handlerEntry, type HandlerName } from './bundling';
import { settings } from './settings';

/** The retention of every log group of the stack (context `logRetentionDays`). */
export const logRetention = (scope: Construct): logs.RetentionDays => settings(scope).logRetentionDays;

export interface HandlerFunctionProps
  extends Omit<NodejsFunctionProps, 'entry' | 'handler' | 'runtime' | 'architecture' | 'bundling' | 'logGroup' | 'role'> {
  /** File name under lambdas/handlers/, which exports `handler`. */
  readonly name: HandlerName;
  /** Commands run after esbuild, to put more files in the bundle's directory (`outputDir`). */
  readonly afterBundling?: (outputDir: string) => string[];
}

/**
 * One Lambda handler with its own log group and role. The role only gets write access to that log group
 * (instead of the AWS-managed basic execution policy, which allows any log group); callers add the grants.
 */
export class HandlerFunction extends Construct {
  readonly name: HandlerName;
  readonly fn: NodejsFunction;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: HandlerFunctionProps) {
    super(scope, id);
    const { name, environment, afterBundling, ...rest } = props;
    this.name = name;
    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: logRetention(this) });
    const role = new iam.Role(this, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    this.logGroup.grantWrite(role);
    this.fn = new NodejsFunction(this, 'Function', {
      ...FUNCTION_DEFAULTS,
      timeout: Duration.seconds(10),
      ...rest,
      entry: handlerEntry(name),
      ...(afterBundling && {
        bundling: {
          ...FUNCTION_DEFAULTS.bundling,
          commandHooks: { beforeBundling: () => [], beforeInstall: () => [], afterBundling: (_inputDir: string, outputDir: string) => afterBundling(outputDir) },
        },
      }),
      handler: 'handler',
      role,
      logGroup: this.logGroup,
      environment: { POWERTOOLS_SERVICE_NAME: SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE, ...environment },
    });
    Validations.of(this).acknowledge({
      id: 'AwsSolutions-L1',
      reason: 'nodejs22.x is pinned on purpose: bundles target node22 and the bench measures that runtime; a runtime upgrade is a deliberate change.',
    });
  }
}
