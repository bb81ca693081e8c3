import { Duration } from 'aws-cdk-lib';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { acknowledge } from '../nag.ts';

export interface MirrorDistributionProps {
  /** The private mirror bucket; it stays private, read by CloudFront through origin access control. */
  bucket: s3.IBucket;
  /**
   * The store's key prefix (e.g. `mirror/`); the distribution's root is that folder.
   * @default '' (the bucket root)
   */
  prefix?: string;
}

/** `{channel}/{board}/current/…` moves with every release; everything else is immutable once written. */
export const currentPathPattern = '*/current/*';

/**
 * The public face of the mirror, so instances and `flatcar-install -b` have an HTTPS URL while the bucket
 * keeps blocking all public access: origin access control (SigV4 from CloudFront, granted by a bucket policy
 * that names this distribution), HTTPS only, GET and HEAD only. Versioned folders never change after
 * finalize, so they are cached for long; `current/` answers within a minute of moving, because a stale
 * `current/version.txt` would send installers to the previous release.
 */
export class MirrorDistribution extends cloudfront.Distribution {
  constructor(scope: Construct, id: string, props: MirrorDistributionProps) {
    const folder = (props.prefix ?? '').replace(/\/+$/, '');
    const origin = origins.S3BucketOrigin.withOriginAccessControl(props.bucket, {
      ...(folder === '' ? {} : { originPath: `/${folder}` }),
    });
    const behavior = {
      origin,
      viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
      allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
      cachedMethods: cloudfront.CachedMethods.CACHE_GET_HEAD,
      responseHeadersPolicy: cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
      compress: false,
    };
    super(scope, id, {
      comment: 'cldist release mirror',
      defaultBehavior: { ...behavior, cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED },
      additionalBehaviors: {
        [currentPathPattern]: {
          ...behavior,
          cachePolicy: new cloudfront.CachePolicy(scope, `${id}CurrentCache`, {
            comment: 'cldist mirror current/: follows a new release within a minute',
            defaultTtl: Duration.seconds(60),
            maxTtl: Duration.seconds(60),
            minTtl: Duration.seconds(0),
            enableAcceptEncodingGzip: false,
            enableAcceptEncodingBrotli: false,
          }),
        },
      },
      priceClass: cloudfront.PriceClass.PRICE_CLASS_100,
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
    });
    acknowledge(
      this,
      'AwsSolutions-CFR1',
      'The mirror serves public, signed OS releases; there is no country it must be withheld from.',
    );
    acknowledge(
      this,
      'AwsSolutions-CFR2',
      'Read-only public content of signed files with caching; WAF adds per-request cost and no protection ' +
        'an attacker could not get by downloading the public upstream.',
    );
    acknowledge(
      this,
      'AwsSolutions-CFR3',
      'CloudFront standard logging needs an ACL-enabled bucket, which this app never creates; origin fetches ' +
        'are covered by the optional S3 server access logs.',
    );
    acknowledge(
      this,
      'AwsSolutions-CFR4',
      'The default *.cloudfront.net certificate does not allow choosing the minimum viewer TLS version; ' +
        'the origin side uses OAC over HTTPS.',
    );
  }
}
