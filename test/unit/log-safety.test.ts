import { describe, expect, it, vi } from 'vitest';
import { createApiApp } from '../../shared/api/app.ts';
import { parseConfig } from '../../shared/config.ts';
import type { InstanceServiceDeps } from '../../shared/instances/service.ts';
import { redactPaths } from '../../shared/log-safety.ts';

describe('redactPaths', () => {
  it('hides absolute paths and joins lines, and leaves store keys and URLs alone', () => {
    expect(redactPaths("ENAMETOOLONG: name too long, open '/var/lib/cldist/mirror/stable/x'")).toBe(
      "ENAMETOOLONG: name too long, open '<path>'",
    );
    expect(redactPaths('failed\n    at open (/srv/app/node_modules/x.js:1:2)')).toBe(
      'failed at open (<path>:1:2)',
    );
    expect(redactPaths('store key stable/amd64-usr/1.0.0/x is invalid')).toBe(
      'store key stable/amd64-usr/1.0.0/x is invalid',
    );
    expect(redactPaths('GET http://127.0.0.1:8080/mirror/stable/x failed')).toBe(
      'GET http://127.0.0.1:8080/mirror/stable/x failed',
    );
  });
});

describe('the API app without an onInternalError', () => {
  it('logs an unexpected error as one JSON line without absolute paths, and answers a bare 500', async () => {
    const broken = {
      get: () => Promise.reject(new Error("EIO: i/o error, open '/srv/secret/ledger/000012.ldb'\n  at x")),
    };
    const deps = { instances: broken, bodies: {}, clock: () => new Date() } as unknown as InstanceServiceDeps;
    const app = createApiApp({ ...deps, adminAuth: { kind: 'iam' } }, parseConfig({}));
    const lines: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    let status = 0;
    let body = '';
    try {
      const response = await app.request('/v1/instances/a/ignition', {
        headers: { Authorization: 'Bearer t' },
      });
      status = response.status;
      body = await response.text();
    } finally {
      write.mockRestore();
    }
    expect(status).toBe(500);
    expect(body).not.toContain('EIO');
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0] ?? '');
    expect(record).toMatchObject({ level: 'error', event: 'api.internal_error' });
    expect(record.cause).toContain('EIO');
    expect(record.cause).not.toContain('/srv/secret');
  });
});
