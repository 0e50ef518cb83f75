// AWS's account-wide API throttling as token buckets (reference, sections 2–4), for the fidelity proxy: every call
// takes a token from each bucket it draws from, or is refused in its service's own throttling shape and takes none.
// Divided by a scale factor, the buckets let a few dozen agents stand for a fleet of hundreds: 40 agents against
// buckets ÷12.5 make the same demand per token, and so take the same time, as 500 agents against AWS's own.
import type { AwsService } from "./aws-wire";

export interface BucketSize {
  /** Tokens when full (the burst). */
  burst: number;
  /** Tokens added per second. */
  perSecond: number;
}

/** Which buckets a call draws from, and how big each is, before scaling. */
export interface ThrottleModel {
  bucketsOf(service: AwsService, operation: string): { name: string; size: BucketSize }[];
}

const read = (operation: string): boolean => /^(Describe|List|Get|Search)/.test(operation);

/**
 * AWS's published figures. Route 53: an account bucket of 50 burst and 10/s that every call draws from, plus a bucket
 * per operation of the same size. EC2: a bucket per action, 100/20 for reads (filtered or paginated Describe*), 50/5
 * for mutating actions such as AssociateAddress. ELBv2: one bucket of 40/10 for every Describe*; the figures for
 * RegisterTargets and DeregisterTargets are not published, so each gets a bucket of that size too (an assumption).
 */
export const awsThrottling: ThrottleModel = {
  bucketsOf(service, operation) {
    switch (service) {
      case "route53":
        return [
          { name: "route53 (account)", size: { burst: 50, perSecond: 10 } },
          { name: `route53 ${operation}`, size: { burst: 50, perSecond: 10 } },
        ];
      case "ec2":
        return [
          read(operation)
            ? { name: `ec2 ${operation}`, size: { burst: 100, perSecond: 20 } }
            : { name: `ec2 ${operation}`, size: { burst: 50, perSecond: 5 } },
        ];
      case "elasticloadbalancing":
        return [
          read(operation)
            ? { name: "elbv2 Describe*", size: { burst: 40, perSecond: 10 } }
            : { name: `elbv2 ${operation}`, size: { burst: 40, perSecond: 10 } },
        ];
      default:
        return [];
    }
  },
};

export interface BucketStats {
  name: string;
  burst: number;
  perSecond: number;
  /** Calls that got a token. */
  taken: number;
  /** Calls refused because this bucket was empty. */
  refused: number;
}

interface Bucket extends BucketStats {
  tokens: number;
  at: number;
}

/** The buckets of one AWS account, divided by `scale`; each starts full when first used (an idle bucket is full). */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly scale: number,
    private readonly now: () => number = Date.now,
    private readonly model: ThrottleModel = awsThrottling,
  ) {
    if (!(scale > 0)) throw new Error(`throttling scale must be positive, not ${scale}`);
  }

  /** Takes a token from every bucket the call draws from and returns true, or takes none and returns false. */
  take(service: AwsService, operation: string): boolean {
    const now = this.now();
    const buckets = this.model.bucketsOf(service, operation).map(({ name, size }) => this.bucket(name, size, now));
    const empty = buckets.filter((b) => b.tokens < 1);
    if (empty.length > 0) {
      for (const b of empty) b.refused += 1;
      return false;
    }
    for (const b of buckets) {
      b.tokens -= 1;
      b.taken += 1;
    }
    return true;
  }

  /** Every bucket used so far, with its scaled size and what it let through and refused. */
  stats(): BucketStats[] {
    return [...this.buckets.values()].map(({ name, burst, perSecond, taken, refused }) => ({
      name,
      burst,
      perSecond,
      taken,
      refused,
    }));
  }

  /** The scaled size of the buckets a call draws from (for working out what they allow). */
  sizesOf(service: AwsService, operation: string): { name: string; size: BucketSize }[] {
    return this.model.bucketsOf(service, operation).map(({ name, size }) => ({ name, size: this.scaled(size) }));
  }

  private scaled(size: BucketSize): BucketSize {
    return { burst: size.burst / this.scale, perSecond: size.perSecond / this.scale };
  }

  private bucket(name: string, size: BucketSize, now: number): Bucket {
    let b = this.buckets.get(name);
    if (!b) {
      const { burst, perSecond } = this.scaled(size);
      b = { name, burst, perSecond, tokens: burst, at: now, taken: 0, refused: 0 };
      this.buckets.set(name, b);
    }
    b.tokens = Math.min(b.burst, b.tokens + ((now - b.at) / 1000) * b.perSecond);
    b.at = now;
    return b;
  }
}
