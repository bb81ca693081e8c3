import { createHash, randomBytes } from 'node:crypto';

export interface SessionStoreOptions {
  /** How long a session lasts after login; also the cookie's Max-Age. */
  ttlSeconds: number;
  /** Sessions kept at most; the oldest is dropped first, so logins in a loop cannot grow memory. */
  max: number;
  clock?: () => number;
}

export interface SessionStore {
  /** A new session: the id goes into the cookie, and only its hash is kept. */
  create(): string;
  valid(id: string | undefined): boolean;
  end(id: string | undefined): void;
  readonly size: number;
}

const digest = (id: string): string => createHash('sha256').update(id).digest('base64url');

/**
 * Status page sessions, so the browser holds a random id instead of the admin token itself: a leaked
 * cookie expires and can be ended, and the token stays out of the browser. In memory: a restart logs
 * everyone out, which a single-machine runner can afford. Keys are hashes of the ids, so a lookup's
 * timing depends on a hash an attacker cannot steer, not on how much of a guessed id matched.
 */
export function createSessionStore(options: SessionStoreOptions): SessionStore {
  const clock = options.clock ?? Date.now;
  const expiries = new Map<string, number>();
  const prune = (now: number) => {
    for (const [key, expires] of expiries) {
      if (expires <= now) expiries.delete(key);
    }
  };
  return {
    create() {
      const now = clock();
      prune(now);
      while (expiries.size >= options.max) {
        const oldest = expiries.keys().next().value;
        if (oldest === undefined) break;
        expiries.delete(oldest);
      }
      const id = randomBytes(32).toString('base64url');
      expiries.set(digest(id), now + options.ttlSeconds * 1000);
      return id;
    },
    valid(id) {
      if (id === undefined || id.length === 0 || id.length > 100) return false;
      const key = digest(id);
      const expires = expiries.get(key);
      if (expires === undefined) return false;
      if (expires <= clock()) {
        expiries.delete(key);
        return false;
      }
      return true;
    },
    end(id) {
      if (id !== undefined) expiries.delete(digest(id));
    },
    get size() {
      return expiries.size;
    },
  };
}
