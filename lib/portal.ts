import { Aws, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { ANCHOR_PREFIX } from '../lambdas/core/ledger';
import { Construct } from 'constructs';
import { TABLES, type TableName } from '../lambdas/store/tables';
import type { ByokKey } from './byok';
import type { Custody } from './custody';
import { PROJECT_ROOT } from './esbuild';
import { HandlerFunction } from './function';

export interface PortalProps {
  readonly stage: string;
  readonly tables: Record<TableName, dynamodb.ITable>;
  readonly custody: Custody;
  readonly byok: ByokKey;
}

/** Where the built pages go in the portal-assets function's bundle (its handler reads them from beside itself). */
const buildPortalInto = (outputDir: string) =>
  [`"${process.execPath}" "${PROJECT_ROOT}/node_modules/tsx/dist/cli.mjs" "${PROJECT_ROOT}/portal/build.ts" "${outputDir}/portal"`];

/**
 * The portal: its users (a Cognito user pool: no self sign-up, operator-invited, MFA by authenticator app
 * available, the authorization code flow with PKCE for a public client), its JSON API and its pages, both served
 * by the stack's API (lib/api.ts routes /api/portal/… and /portal to these functions).
 */
export class Portal extends Construct {
  readonly userPool: cognito.UserPool;
  readonly domain: cognito.UserPoolDomain;
  readonly api: HandlerFunction;
  readonly assets: HandlerFunction;
  /** Signs residency reports; not the ledger's key, which only the ledger writer may sign with. */
  readonly reportSigningKey: kms.Key;

  constructor(scope: Construct, id: string, props: PortalProps) {
    super(scope, id);
    const { tables, custody, byok } = props;
    this.userPool = new cognito.UserPool(this, 'Users', {
      userPoolName: `ni-${props.stage}-portal`,
      selfSignUpEnabled: false,
      signInAliases: { email: true },
      signInCaseSensitive: false,
      autoVerify: { email: true },
      standardAttributes: { email: { required: true, mutable: true } },
      mfa: cognito.Mfa.OPTIONAL,
      mfaSecondFactor: { otp: true, sms: false },
      passwordPolicy: {
        minLength: 14, requireLowercase: true, requireUppercase: true, requireDigits: true, requireSymbols: true,
        tempPasswordValidity: Duration.days(3),
      },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      featurePlan: cognito.FeaturePlan.ESSENTIALS,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
      userInvitation: {
        emailSubject: 'Your Northern Inference portal account',
        emailBody: 'You have been invited to the Northern Inference portal. Your user name is {username} and your temporary password is {####}.',
      },
    });
    // Cognito's own sign-in pages, in ca-central-1; the prefix is unique per account and stage.
    this.domain = this.userPool.addDomain('SignIn', { cognitoDomain: { domainPrefix: `ni-${props.stage}-${Aws.ACCOUNT_ID}` } });

    this.reportSigningKey = new kms.Key(this, 'ReportSigningKey', {
      description: 'Signs Northern Inference residency reports (ECDSA P-256)',
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      // Reports handed to assessors are verified against this key for years.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.api = new HandlerFunction(this, 'Api', {
      name: 'portal',
      description: "The portal's JSON API (one account's keys, models, usage, receipts, residency reports)",
      memorySize: 512,
      timeout: Duration.seconds(29),
      environment: {
        [TABLES.keys.env]: tables.keys.tableName,
        [TABLES.usage.env]: tables.usage.tableName,
        [TABLES.ledger.env]: tables.ledger.tableName,
        NI_LEDGER_SIGNING_KEY_ID: custody.signingKey.keyId,
        NI_LEDGER_ANCHOR_BUCKET: custody.anchorBucket.bucketName,
        NI_REPORT_SIGNING_KEY_ID: this.reportSigningKey.keyId,
        NI_BYOK_KMS_KEY_ID: byok.key.keyId,
        NI_PORTAL_USER_POOL_ID: this.userPool.userPoolId,
        NI_PORTAL_AUTH_DOMAIN: this.domain.baseUrl(),
      },
    });
    tables.keys.grantReadWriteData(this.api.fn);
    tables.usage.grantReadData(this.api.fn);
    tables.ledger.grantReadData(this.api.fn);
    // Residency reports: signed with their own key; verifying the chain reads the ledger key's public half and the anchor.
    this.reportSigningKey.grant(this.api.fn, 'kms:Sign', 'kms:GetPublicKey');
    custody.signingKey.grant(this.api.fn, 'kms:GetPublicKey');
    // A key's own provider credentials (BYOK): sealed here, never opened (only the gateway may Decrypt).
    byok.grantSeal(this.api.fn);
    this.api.fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [custody.anchorBucket.bucketArn] }));
    this.api.fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [custody.anchorBucket.arnForObjects(`${ANCHOR_PREFIX}*`)] }));
    Validations.of(this.api).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(custody.anchorBucket.node.defaultChild as s3.CfnBucket)}.Arn>/${ANCHOR_PREFIX}*]`,
      reason: "Verifying a key's chain for its residency report reads the anchored checkpoints, one object per checkpoint under the prefix; read only.",
    });

    this.assets = new HandlerFunction(this, 'Assets', {
      name: 'portal-assets',
      description: "The portal's pages",
      memorySize: 256,
      afterBundling: buildPortalInto,
    });
  }

  /** The app client, once the portal's address (the callback URLs) is known. */
  addClient(portalUrls: string[]): cognito.UserPoolClient {
    const client = this.userPool.addClient('Client', {
      generateSecret: false, // a browser app: PKCE instead of a secret
      authFlows: {},
      oAuth: {
        flows: { authorizationCodeGrant: true },
        scopes: [cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
        callbackUrls: portalUrls,
        logoutUrls: portalUrls,
      },
      supportedIdentityProviders: [cognito.UserPoolClientIdentityProvider.COGNITO],
      preventUserExistenceErrors: true,
      accessTokenValidity: Duration.hours(1),
      idTokenValidity: Duration.hours(1),
      refreshTokenValidity: Duration.hours(12),
      enableTokenRevocation: true,
    });
    this.api.fn.addEnvironment('NI_PORTAL_CLIENT_ID', client.userPoolClientId);
    Validations.of(this.userPool).acknowledge(
      { id: 'AwsSolutions-COG2', reason: 'MFA is available to every user (authenticator app) but optional, as the product asks; operators can require it per user.' },
      { id: 'AwsSolutions-COG8', reason: 'Essentials plan: operator-invited users, optional TOTP MFA and strong passwords; Plus (threat protection) can be chosen per deployment.' },
    );
    return client;
  }
}
