import { parseArgs } from 'node:util';
import type { SimKeyType } from './signing.ts';
import { startSimOrigin } from './sim-origin.ts';

/**
 * Run a sim origin in its own process, so a benchmark or chaos run does not share one event loop between
 * server and client. Prints one JSON line (URLs, key, checksums), then serves until stdin closes or a signal.
 *
 *   node --import tsx local/sim-origin/main.ts --channel stable --board amd64-usr --version 3510.2.8 \
 *     --artifact flatcar_production_image.bin.bz2=536870912
 */
const { values } = parseArgs({
  options: {
    channel: { type: 'string', default: 'stable' },
    board: { type: 'string', default: 'amd64-usr' },
    version: { type: 'string', default: '3510.2.8' },
    artifact: { type: 'string', multiple: true, default: [] },
    'key-type': { type: 'string', default: 'curve25519' },
  },
  strict: true,
});

const keyType = values['key-type'];
if (keyType !== 'curve25519' && keyType !== 'rsa4096') {
  throw new Error(`--key-type must be curve25519 or rsa4096, not ${keyType}`);
}
const artifacts = values.artifact.map((spec) => {
  const match = /^([^=]+)=([0-9]+)$/.exec(spec);
  if (!match?.[1] || !match[2]) {
    throw new Error(`--artifact must be NAME=BYTES, not ${JSON.stringify(spec)}`);
  }
  return { name: match[1], size: Number(match[2]) };
});

const origin = await startSimOrigin({ keyType: keyType satisfies SimKeyType });
const release = await origin.publishRelease({
  channel: values.channel,
  board: values.board,
  version: values.version,
  artifacts,
});
process.stdout.write(
  `${JSON.stringify({
    url: origin.url,
    baseUrl: origin.baseUrl,
    releaseUrl: release.url,
    primaryFingerprint: origin.primaryFingerprint,
    publicKeyArmored: origin.publicKeyArmored,
    sha512: release.sha512,
    size: release.size,
  })}\n`,
);

const stop = (): void => {
  origin.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
