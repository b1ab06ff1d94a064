import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { CUSTODY_DETAIL_TYPE, CUSTODY_EVENT_SOURCE } from '../lambdas/core/custody';
import { ANCHOR_PREFIX } from '../lambdas/core/ledger';
import { TABLES } from '../lambdas/store/tables';
import { HandlerFunction } from './function';
import { settings } from './settings';

export interface CustodyProps {
  readonly ledgerTable: dynamodb.ITable;
}

const WRITER_TIMEOUT = Duration.seconds(30);
const RETENTION = Duration.days(14);
/** AWS's guidance for SQS event sources: a visibility timeout of at least six times the function timeout. */
const WRITER_VISIBILITY_TIMEOUT = Duration.seconds(6 * WRITER_TIMEOUT.toSeconds());
/**
 * Receives before a message goes to its dead-letter queue: all of them fit in the ledger's redelivery window
 * (REDELIVERY_WINDOW_MS in lambdas/core/ledger.ts), after which verify flags a claimed event not in the chain.
 */
export const WRITER_MAX_RECEIVES = 5;
/** The ledger queue's batches: up to this many events, gathered for up to this long (one block per key each). */
export const LEDGER_BATCH = { size: 100, window: Duration.seconds(1) };
/**
 * The custody pipeline: the gateway puts one event per request on the bus; a rule sends it to the ledger queue,
 * which the ledger writer drains in batches (one block write per key per batch), appending to the key's hash
 * chain and signing checkpoints with an asymmetric KMS key, each anchored in a write-once S3 bucket. When the bus
 * is unreachable the gateway sends the same event to the fallback queue, which the writer also drains. Nothing is
 * dropped silently: undeliverable events land in dead-letter queues (alarmed).
 */
/** Environments kept for the ledger writer, so that custody records keep being written while streams fill the account. */
export const LEDGER_WRITER_RESERVED_CONCURRENCY = 10;

export class Custody extends Construct {
  readonly bus: events.EventBus;
  readonly signingKey: kms.Key;
  readonly fallbackQueue: sqs.Queue;
  /** What the bus rule feeds and the writer drains. */
  readonly ledgerQueue: sqs.Queue;
  /** Ledger queue messages the writer failed on WRITER_MAX_RECEIVES times. */
  readonly ledgerDeadLetterQueue: sqs.Queue;
  /** Signed checkpoints, write-once (Object Lock, compliance mode). */
  readonly anchorBucket: s3.Bucket;
  /** Events the rule could not deliver to the ledger queue. */
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
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself a dead-letter queue: the bus rule target\'s (EventBridge DeadLetterConfig), which cdk-nag does not count as DLQ use. It is alarmed.',
    });
    const writerQueue = (queueId: string, deadLetters: sqs.Queue) =>
      queue(queueId, { visibilityTimeout: WRITER_VISIBILITY_TIMEOUT, deadLetterQueue: { queue: deadLetters, maxReceiveCount: WRITER_MAX_RECEIVES } });
    this.fallbackDeadLetterQueue = queue('FallbackDeadLetterQueue');
    this.fallbackQueue = writerQueue('FallbackQueue', this.fallbackDeadLetterQueue);
    this.ledgerDeadLetterQueue = queue('LedgerDeadLetterQueue');
    this.ledgerQueue = writerQueue('LedgerQueue', this.ledgerDeadLetterQueue);

    this.anchorBucket = new s3.Bucket(this, 'CheckpointAnchor', {
      versioned: true,
      objectLockEnabled: true,
      // Compliance mode: nobody, the root user included, can delete or overwrite a checkpoint, or shorten this.
      objectLockDefaultRetention: s3.ObjectLockRetention.compliance(Duration.days(settings(this).ledgerAnchorRetentionDays)),
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.anchorBucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'Objects here are only ever created, once each, by the ledger writer (its only permission is PutObject), and Object Lock keeps them from being overwritten or deleted; `ni ledger verify` checks every one against the ledger table. Access logs would need another bucket, itself unlogged.',
    });

    this.writer = new HandlerFunction(this, 'LedgerWriter', {
      name: 'ledger-writer',
      description: 'Appends custody records to the per-key ledger chains and signs and anchors checkpoints',
      memorySize: 512,
      timeout: WRITER_TIMEOUT,
      reservedConcurrentExecutions: LEDGER_WRITER_RESERVED_CONCURRENCY,
      environment: {
        [TABLES.ledger.env]: props.ledgerTable.tableName,
        NI_LEDGER_SIGNING_KEY_ID: this.signingKey.keyId,
        NI_LEDGER_ANCHOR_BUCKET: this.anchorBucket.bucketName,
      },
    });
    const writer = this.writer.fn;
    // Least privilege: what lambdas/store/ledger.ts calls on an append-only ledger (no DeleteItem, no Scan).
    props.ledgerTable.grant(writer, 'dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem');
    this.signingKey.grant(writer, 'kms:Sign');
    // Only under the prefix the anchor writes to.
    writer.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [this.anchorBucket.arnForObjects(`${ANCHOR_PREFIX}*`)] }));
    Validations.of(this.writer).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(this.anchorBucket.node.defaultChild as s3.CfnBucket)}.Arn>/${ANCHOR_PREFIX}*]`,
      reason: 'Each checkpoint is a new object named by key and seq under the prefix, so the writer needs the prefix; PutObject is its only permission there and Object Lock keeps it from replacing an object.',
    });
    writer.addEventSource(new SqsEventSource(this.ledgerQueue, {
      batchSize: LEDGER_BATCH.size, maxBatchingWindow: LEDGER_BATCH.window, reportBatchItemFailures: true,
    }));
    writer.addEventSource(new SqsEventSource(this.fallbackQueue, { batchSize: 5, reportBatchItemFailures: true }));

    new events.Rule(this, 'ToLedger', {
      eventBus: this.bus,
      description: 'Custody records to the ledger queue',
      eventPattern: { source: [CUSTODY_EVENT_SOURCE], detailType: [CUSTODY_DETAIL_TYPE] },
      targets: [
        new targets.SqsQueue(this.ledgerQueue, {
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
