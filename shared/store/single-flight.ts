/**
 * Commit and abort must be safe to call twice at once (a `finally { abort() }` racing an error path), yet a
 * failed attempt must be retryable: callers share one attempt in flight, and a failure clears it.
 */
export function singleFlight(run: () => Promise<void>): () => Promise<void> {
  let pending: Promise<void> | undefined;
  return () => {
    pending ??= run().catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}
