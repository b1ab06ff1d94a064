import { Duration, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DIMENSION, METRIC, METRICS_NAMESPACE, SERVICE_NAME } from '../lambdas/core/metrics';

type MetricKey = keyof typeof METRIC;

/** The dimension powertools Metrics adds to every data point (value: SERVICE_NAME). */
const SERVICE_DIMENSION = 'service';
const BY_MODEL_AND_TIER = [SERVICE_DIMENSION, DIMENSION.model, DIMENSION.tier];
const PERIOD = Duration.minutes(5);

/**
 * How each gateway metric is charted: its statistic, and the dimension set it is emitted with (see
 * lambdas/telemetry.ts). A Record, so a new METRIC cannot be left off the dashboard.
 */
const GATEWAY_METRICS: Record<MetricKey, { stat: string; dimensions: string[] }> = {
  requests: { stat: cw.Stats.SUM, dimensions: BY_MODEL_AND_TIER },
  inputTokens: { stat: cw.Stats.SUM, dimensions: BY_MODEL_AND_TIER },
  outputTokens: { stat: cw.Stats.SUM, dimensions: BY_MODEL_AND_TIER },
  cacheReadTokens: { stat: cw.Stats.SUM, dimensions: BY_MODEL_AND_TIER },
  cacheWriteTokens: { stat: cw.Stats.SUM, dimensions: BY_MODEL_AND_TIER },
  costMicroCad: { stat: cw.Stats.SUM, dimensions: BY_MODEL_AND_TIER },
  timeToFirstToken: { stat: cw.Stats.p(90), dimensions: BY_MODEL_AND_TIER },
  duration: { stat: cw.Stats.p(90), dimensions: BY_MODEL_AND_TIER },
  errors: { stat: cw.Stats.SUM, dimensions: [...BY_MODEL_AND_TIER, DIMENSION.errorType] },
  spendCapRejections: { stat: cw.Stats.SUM, dimensions: BY_MODEL_AND_TIER },
  piiSubstitutions: { stat: cw.Stats.SUM, dimensions: BY_MODEL_AND_TIER },
  upstreamThrottles: { stat: cw.Stats.SUM, dimensions: BY_MODEL_AND_TIER },
  // Counted where no request context exists: service dimension only.
  custodyEmitFailures: { stat: cw.Stats.SUM, dimensions: [SERVICE_DIMENSION] },
};

/** Every series of one gateway metric (one per model × tier, and error type for Errors). */
export function gatewaySearch(key: MetricKey): string {
  const { stat, dimensions } = GATEWAY_METRICS[key];
  return `SEARCH('{${METRICS_NAMESPACE},${dimensions.join(',')}} MetricName="${METRIC[key]}"', '${stat}', ${PERIOD.toSeconds()})`;
}

/** A gateway metric summed over all models and tiers: the service-only total every data point also carries. */
export function gatewayTotal(key: MetricKey): cw.Metric {
  return new cw.Metric({
    namespace: METRICS_NAMESPACE,
    metricName: METRIC[key],
    dimensionsMap: { [SERVICE_DIMENSION]: SERVICE_NAME },
    statistic: cw.Stats.SUM,
    period: PERIOD,
  });
}

export interface ObservabilityProps {
  readonly api: apigw.RestApi;
  readonly functions: Record<string, lambda.IFunction>;
  readonly tables: Record<string, dynamodb.ITable>;
  readonly custodyDeadLetterQueue: sqs.IQueue;
  readonly ledgerQueue: sqs.IQueue;
  readonly ledgerDeadLetterQueue: sqs.IQueue;
  readonly fallbackQueue: sqs.IQueue;
  readonly fallbackDeadLetterQueue: sqs.IQueue;
  /** Subscribed to the alarm topic. */
  readonly alarmEmail?: string;
  /** An existing topic to notify instead of creating one. */
  readonly alarmTopicArn?: string;
}

/** One dashboard for the whole gateway, and the alarms that page (through one SNS topic). */
export class Observability extends Construct {
  readonly dashboard: cw.Dashboard;
  readonly alarmTopic: sns.ITopic;
  readonly alarms: cw.Alarm[] = [];

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const { api, functions, tables } = props;

    this.alarmTopic = props.alarmTopicArn ? sns.Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn) : this.ownTopic(props.alarmEmail);

    const alarm = (alarmId: string, description: string, metric: cw.IMetric, threshold: number, extra: Partial<cw.AlarmProps> = {}) => {
      const a = new cw.Alarm(this, alarmId, {
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        ...extra,
      });
      a.addAlarmAction(new SnsAction(this.alarmTopic));
      this.alarms.push(a);
    };
    const maxOverMinute = { statistic: cw.Stats.MAXIMUM, period: Duration.minutes(1) };
    alarm('Api5xxRate', 'More than 5% of API requests failed with a 5xx', api.metricServerError({ statistic: cw.Stats.AVERAGE, period: PERIOD }), 0.05, {
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
    });
    alarm('CustodyDeadLetters', 'Custody events could not be written to the ledger', props.custodyDeadLetterQueue.metricApproximateNumberOfMessagesVisible(maxOverMinute), 0);
    alarm('LedgerDeadLetters', 'Custody events the ledger writer kept failing on', props.ledgerDeadLetterQueue.metricApproximateNumberOfMessagesVisible(maxOverMinute), 0);
    alarm('LedgerBacklog', 'The ledger queue is not being drained', props.ledgerQueue.metricApproximateNumberOfMessagesVisible({ statistic: cw.Stats.MAXIMUM, period: PERIOD }), 10_000, { evaluationPeriods: 3 });
    alarm('FallbackDeadLetters', 'Fallback custody messages could not be written to the ledger', props.fallbackDeadLetterQueue.metricApproximateNumberOfMessagesVisible(maxOverMinute), 0);
    alarm('FallbackBacklog', 'The custody fallback queue is not being drained', props.fallbackQueue.metricApproximateAgeOfOldestMessage({ statistic: cw.Stats.MAXIMUM, period: PERIOD }), 300);
    alarm('UpstreamThrottling', 'Bedrock is throttling the gateway', gatewayTotal('upstreamThrottles'), 10);
    alarm('CustodyEmitFailures', 'The gateway lost custody events: neither the bus nor the fallback queue took them', gatewayTotal('custodyEmitFailures'), 0);

    this.dashboard = new cw.Dashboard(this, 'Dashboard', { dashboardName: Stack.of(this).stackName, defaultInterval: Duration.hours(3) });
    this.dashboard.addWidgets(new cw.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 }));

    const graph = (title: string, left: cw.IMetric[], width = 8) => new cw.GraphWidget({ title, left, width, height: 6 });
    this.dashboard.addWidgets(
      ...(Object.keys(GATEWAY_METRICS) as MetricKey[]).map((key) =>
        graph(GATEWAY_METRICS[key].dimensions.length > 1 ? `${METRIC[key]} by model and tier` : METRIC[key], [new cw.SearchExpression({ expression: gatewaySearch(key), label: '', period: PERIOD })]),
      ),
    );

    this.dashboard.addWidgets(
      graph('API requests', [api.metricCount({ period: PERIOD })], 6),
      graph('API 4xx', [api.metricClientError({ period: PERIOD })], 6),
      graph('API 5xx', [api.metricServerError({ period: PERIOD })], 6),
      graph('API latency', [api.metricLatency({ statistic: cw.Stats.p(50), period: PERIOD }), api.metricLatency({ statistic: cw.Stats.p(90), period: PERIOD })], 6),
    );

    const perFunction = (metricName: string, statistic: string) =>
      Object.entries(functions).map(([name, fn]) => fn.metric(metricName, { statistic, period: PERIOD, label: name }));
    this.dashboard.addWidgets(
      graph('Lambda invocations', perFunction('Invocations', cw.Stats.SUM)),
      graph('Lambda errors', perFunction('Errors', cw.Stats.SUM)),
      graph('Lambda throttles', perFunction('Throttles', cw.Stats.SUM)),
      graph('Lambda duration p90', perFunction('Duration', cw.Stats.p(90))),
      graph('Lambda concurrent executions', perFunction('ConcurrentExecutions', cw.Stats.MAXIMUM)),
    );

    this.dashboard.addWidgets(
      graph(
        'DynamoDB throttle events',
        Object.entries(tables).flatMap(([name, table]) =>
          ['ReadThrottleEvents', 'WriteThrottleEvents'].map((m) => table.metric(m, { statistic: cw.Stats.SUM, period: PERIOD, label: `${name} ${m}` })),
        ),
      ),
      graph('Custody queue depth', [
        props.custodyDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ label: 'dead letters', ...maxOverMinute }),
        props.ledgerQueue.metricApproximateNumberOfMessagesVisible({ label: 'ledger', ...maxOverMinute }),
        props.ledgerDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ label: 'ledger dead letters', ...maxOverMinute }),
        props.fallbackQueue.metricApproximateNumberOfMessagesVisible({ label: 'fallback', ...maxOverMinute }),
        props.fallbackDeadLetterQueue.metricApproximateNumberOfMessagesVisible({ label: 'fallback dead letters', ...maxOverMinute }),
      ]),
      graph('Custody fallback age (s)', [props.fallbackQueue.metricApproximateAgeOfOldestMessage({ statistic: cw.Stats.MAXIMUM, period: PERIOD })]),
    );
  }

  /** A topic of the stack's own; an alarm reaches someone only through a subscriber, so the e-mail is one. */
  private ownTopic(email: string | undefined): sns.Topic {
    // Alarm notifications are encrypted with a key CloudWatch may use (it cannot use the AWS-managed SNS key).
    const topicKey = new kms.Key(this, 'AlarmTopicKey', { description: 'Encrypts Northern Inference alarm notifications', enableKeyRotation: true });
    topicKey.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
    const topic = new sns.Topic(this, 'AlarmTopic', { masterKey: topicKey, enforceSSL: true });
    if (email) topic.addSubscription(new subscriptions.EmailSubscription(email));
    return topic;
  }
}
