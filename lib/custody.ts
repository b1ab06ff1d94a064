import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { CUSTODY_DETAIL_TYPE, CUSTODY_EVENT_SOURCE } from '../lambdas/core/custody';
import { TABLES } from '../lambdas/store/tables';
import { HandlerFunction } from './function';

export interface CustodyProps {
  readonly ledgerTable: dynamodb.ITable;
}

const WRITER_TIMEOUT = Duration.seconds(30);
const RETENTION = Duration.days(14);

/**
 * The custody pipeline: the gateway puts one event per request on the bus; a rule delivers it to the ledger
 * writer, which appends it to the key's hash chain and signs checkpoints with an asymmetric KMS key. When the
 * bus is unreachable the gateway sends the same event to the fallback queue, which the writer also drains.
 * Nothing is dropped silently: undeliverable events land in a dead-letter queue (alarmed).
 */
/** Environments kept for the ledger writer, so that custody records keep being written while streams fill the account. */
export const LEDGER_WRITER_RESERVED_CONCURRENCY = 10;

export class Custody extends Construct {
  readonly bus: events.EventBus;
  readonly signingKey: kms.Key;
  readonly fallbackQueue: sqs.Queue;
  /** Events the rule could not deliver, or the writer failed on after Lambda's async retries. */
  readonly deadLetterQueue: sqs.Queue;
  /** Fallback messages the writer failed on maxReceiveCount times. */
  readonly fallbackDeadLetterQueue: sqs.Queue;
  readonly writer: HandlerFunction;

  constructor(scope: Construct, id: string, props: CustodyProps) {
    super(scope, id);
    this.bus = new events.EventBus(this, 'Bus');

    this.signingKey = new kms.Key(this, 'LedgerSigningKey', {
      description: 'Signs Northern Inference ledger checkpoints (ECDSA P-256)',
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      // Published checkpoints are verified against this key for as long as the ledger exists.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const queue = (queueId: string, extra: sqs.QueueProps = {}) =>
      new sqs.Queue(this, queueId, { encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true, retentionPeriod: RETENTION, ...extra });
    this.deadLetterQueue = queue('DeadLetterQueue');
    this.fallbackDeadLetterQueue = queue('FallbackDeadLetterQueue');
    this.fallbackQueue = queue('FallbackQueue', {
      // AWS's guidance for SQS event sources: at least six times the function timeout.
      visibilityTimeout: Duration.seconds(6 * WRITER_TIMEOUT.toSeconds()),
      deadLetterQueue: { queue: this.fallbackDeadLetterQueue, maxReceiveCount: 5 },
    });

    this.writer = new HandlerFunction(this, 'LedgerWriter', {
      name: 'ledger-writer',
      description: 'Appends custody records to the per-key ledger chains and signs checkpoints',
      memorySize: 512,
      timeout: WRITER_TIMEOUT,
      reservedConcurrentExecutions: LEDGER_WRITER_RESERVED_CONCURRENCY,
      // EventBridge invokes asynchronously: after Lambda's own retries a failed event goes to the DLQ.
      retryAttempts: 2,
      deadLetterQueue: this.deadLetterQueue,
      environment: {
        [TABLES.ledger.env]: props.ledgerTable.tableName,
        NI_LEDGER_SIGNING_KEY_ID: this.signingKey.keyId,
      },
    });
    const writer = this.writer.fn;
    props.ledgerTable.grantReadWriteData(writer);
    this.signingKey.grant(writer, 'kms:Sign', 'kms:GetPublicKey');
    writer.addEventSource(new SqsEventSource(this.fallbackQueue, { batchSize: 5, reportBatchItemFailures: true }));

    new events.Rule(this, 'ToLedger', {
      eventBus: this.bus,
      description: 'Custody records to the ledger writer',
      eventPattern: { source: [CUSTODY_EVENT_SOURCE], detailType: [CUSTODY_DETAIL_TYPE] },
      targets: [
        new targets.LambdaFunction(writer, {
          maxEventAge: Duration.hours(24),
          retryAttempts: 185,
          deadLetterQueue: this.deadLetterQueue,
        }),
      ],
    });
  }

  /** What the gateway may do with custody: put events on this bus, and send to the fallback queue. */
  grantEmit(grantee: iam.IGrantable): void {
    this.bus.grantPutEventsTo(grantee);
    this.fallbackQueue.grant(grantee, 'sqs:SendMessage');
  }
}
