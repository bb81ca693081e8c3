import type { StatusModel } from '../../local/status/model.ts';

/**
 * A status page model with nothing to show: no channels, keys, events or work in flight. Tests of one
 * section of the page add that section's data, or override a field, so the rest stays out of the way.
 */
export function emptyStatusModel(overrides: Partial<StatusModel> = {}): StatusModel {
  return {
    generatedAt: '2026-06-01T00:00:00Z',
    demo: false,
    channels: [],
    signingKeys: [],
    keyWarningDays: 30,
    events: [],
    worker: { inFlight: 0, concurrency: 2 },
    mirrorBaseUrl: 'http://127.0.0.1:8080/mirror',
    ...overrides,
  };
}
