import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as targets from 'aws-cdk-lib/aws-route53-targets';
import { Construct } from 'constructs';
import type { Settings } from './settings';

export interface CustomDomainProps extends Pick<Settings, 'hostedZoneName' | 'hostedZoneId' | 'certificateArn'> {
  readonly domainName: string;
  readonly api: apigw.RestApi;
}

/**
 * A stable address for the API (`https://<domain>/v1`), which survives the API being replaced: a Regional custom
 * domain (TLS 1.2, terminated in ca-central-1 like the API itself) mapped at its root to the API's stage. In a
 * Route 53 zone the stack also creates the DNS-validated certificate and the alias record; with an existing
 * certificate, the operator points DNS at `regionalDomainName` (the CustomDomainTarget output).
 */
export class CustomDomain extends Construct {
  readonly domain: apigw.DomainName;
  /** Created when a hosted zone is given. */
  readonly zone?: route53.IHostedZone;

  constructor(scope: Construct, id: string, props: CustomDomainProps) {
    super(scope, id);
    const { domainName, hostedZoneName, hostedZoneId, certificateArn } = props;
    if (hostedZoneName) {
      this.zone = hostedZoneId
        ? route53.PublicHostedZone.fromHostedZoneAttributes(this, 'Zone', { zoneName: hostedZoneName, hostedZoneId })
        : route53.HostedZone.fromLookup(this, 'Zone', { domainName: hostedZoneName });
    }
    const certificate = certificateArn
      ? acm.Certificate.fromCertificateArn(this, 'Certificate', certificateArn)
      : new acm.Certificate(this, 'Certificate', { domainName, validation: acm.CertificateValidation.fromDns(this.zone) });
    this.domain = new apigw.DomainName(this, 'Domain', {
      domainName,
      certificate,
      endpointType: apigw.EndpointType.REGIONAL,
      securityPolicy: apigw.SecurityPolicy.TLS_1_2,
      mapping: props.api,
    });
    if (this.zone) {
      new route53.ARecord(this, 'Alias', { zone: this.zone, recordName: domainName, target: route53.RecordTarget.fromAlias(new targets.ApiGatewayDomain(this.domain)) });
    }
  }
}
