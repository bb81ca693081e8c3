/** What can go wrong on the way from a release server; each is consumed by matching requests. */
export type Fault =
  | { kind: 'dropAfter'; bytes: number }
  | { kind: 'stallAfter'; bytes: number }
  | { kind: 'tamper'; offset: number }
  | { kind: 'status'; code: number }
  | { kind: 'delay'; ms: number }
  | { kind: 'redirect'; to: string }
  | { kind: 'changeEtag' };

export const faults = {
  /** Destroy the socket after this many body bytes of the response. */
  dropAfter: (bytes: number): Fault => ({ kind: 'dropAfter', bytes }),
  /** Send this many body bytes, then nothing until the client gives up. */
  stallAfter: (bytes: number): Fault => ({ kind: 'stallAfter', bytes }),
  /** Flip the byte at this offset of the object (if the response covers it); the signature stays. */
  tamper: (offset: number): Fault => ({ kind: 'tamper', offset }),
  status: (code: number): Fault => ({ kind: 'status', code }),
  /** Hold the response headers back this long. */
  delay: (ms: number): Fault => ({ kind: 'delay', ms }),
  /** 302 to this URL (absolute, or a path on this origin). */
  redirect: (to: string): Fault => ({ kind: 'redirect', to }),
  /** The object is replaced (same bytes, new ETag and Last-Modified) just before this request is answered. */
  changeEtag: (): Fault => ({ kind: 'changeEtag' }),
};

export interface InjectOptions {
  /** How many matching requests the fault applies to. Default 1. */
  times?: number;
  /** Let this many matching requests through untouched first. Default 0. */
  after?: number;
}

export interface FaultHandle {
  /** Requests the fault has been applied to so far. */
  readonly applied: number;
  readonly remaining: number;
}

interface ActiveFault {
  pattern: RegExp;
  fault: Fault;
  remaining: number;
  skip: number;
  applied: number;
}

/** The faults waiting for requests, in the order they were injected. */
export class FaultList {
  private active: ActiveFault[] = [];

  inject(pathPattern: RegExp | string, fault: Fault, options: InjectOptions = {}): FaultHandle {
    const entry: ActiveFault = {
      pattern: typeof pathPattern === 'string' ? new RegExp(pathPattern) : pathPattern,
      fault,
      remaining: options.times ?? 1,
      skip: options.after ?? 0,
      applied: 0,
    };
    this.active.push(entry);
    return {
      get applied() {
        return entry.applied;
      },
      get remaining() {
        return entry.remaining;
      },
    };
  }

  /** The faults this request gets; each is used up by one application. */
  take(path: string): Fault[] {
    const taken: Fault[] = [];
    for (const entry of this.active) {
      if (entry.remaining <= 0 || !entry.pattern.test(path)) continue;
      if (entry.skip > 0) {
        entry.skip--;
        continue;
      }
      entry.remaining--;
      entry.applied++;
      taken.push(entry.fault);
    }
    this.active = this.active.filter((entry) => entry.remaining > 0);
    return taken;
  }

  clear(): void {
    this.active = [];
  }
}
