import type { ArtifactSpec } from '../../../local/sim-origin/sim-origin.ts';
import { parseConfig } from '../../../shared/config.ts';

/**
 * The artifacts of the deployed config (the operator changed only the origin and its key), each with a
 * size to publish at, so a test's releases follow the defaults when an artifact is added to them.
 * `version.txt` is left out: the sim origin writes it for every release.
 */
export function defaultArtifacts(size: (name: string) => number): ArtifactSpec[] {
  return (parseConfig({}).sources[0]?.artifacts ?? [])
    .filter((artifact) => artifact.name !== 'version.txt')
    .map((artifact) => ({ name: artifact.name, size: size(artifact.name) }));
}
