/**
 * The settings every AWS client of this repository starts from, in a module of its own so a host can
 * build one client without loading every SDK package. Absent endpoint: the real service of the region
 * (from the runtime's AWS_REGION unless named); an endpoint: an emulator, which needs a region named and
 * takes dummy credentials.
 */
export function awsClientConfig(endpoint: string | undefined, region: string | undefined) {
  if (endpoint === undefined) return region === undefined ? {} : { region };
  return { region: region ?? 'us-east-1', endpoint, credentials: emulatorCredentials };
}

const emulatorCredentials = { accessKeyId: 'test', secretAccessKey: 'test' };
