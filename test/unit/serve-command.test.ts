import { describe, expect, it } from 'vitest';
import { parseStoreUrl } from '../../local/commands/serve.ts';
import { ConfigError } from '../../shared/errors.ts';

describe('parseStoreUrl (--store)', () => {
  it('takes a bucket with or without a prefix, and ends the prefix with "/"', () => {
    expect(parseStoreUrl('s3://my-mirror')).toEqual({ bucket: 'my-mirror', prefix: '' });
    expect(parseStoreUrl('s3://my-mirror/')).toEqual({ bucket: 'my-mirror', prefix: '' });
    expect(parseStoreUrl('s3://my-mirror/flatcar')).toEqual({ bucket: 'my-mirror', prefix: 'flatcar/' });
    expect(parseStoreUrl('s3://my-mirror/a/b/')).toEqual({ bucket: 'my-mirror', prefix: 'a/b/' });
  });

  it('refuses other schemes, bad bucket names and unsafe prefixes, naming the flag', () => {
    expect(() => parseStoreUrl('https://my-mirror')).toThrow(/--store https:\/\/my-mirror: expected s3:\/\//);
    expect(() => parseStoreUrl('s3://My_Bucket')).toThrow(ConfigError);
    expect(() => parseStoreUrl('s3://my-mirror/a//b')).toThrow(/--store s3:\/\/my-mirror\/a\/\/b is invalid/);
    expect(() => parseStoreUrl('s3://my-mirror/../x')).toThrow(/may not have "\." or "\.\." segments/);
  });
});
