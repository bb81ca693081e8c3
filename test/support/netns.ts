import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * A throw-away network namespace with a bridge holding 169.254.169.254 and one veth pair per VM into
 * its own namespace with a link-local address, as a provider's hypervisor wires instances to its
 * metadata service. Only link-local and loopback addresses exist inside; the namespaces vanish when the
 * holder process ends. Needs root, `unshare`, `nsenter` (util-linux) and `ip` (iproute2).
 */
export interface Lab {
  /** Runs a command in the lab's network and mount namespaces (where the bridge is). */
  run(command: string, args: string[], timeoutMs?: number): Promise<Outcome>;
  /** Runs a command inside one VM's namespace. */
  inVm(vm: string, command: string, args: string[], timeoutMs?: number): Promise<Outcome>;
  /** Starts a long-running command in the lab; the caller stops it. */
  spawn(command: string, args: string[]): ChildProcess;
  close(): Promise<void>;
}

export interface Outcome {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Why this machine cannot build the lab, or undefined if it can. */
export async function labUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  for (const tool of ['unshare', 'nsenter', 'ip']) {
    const found = await new Promise<boolean>((resolve) =>
      execFile('sh', ['-c', `command -v ${tool}`], (error) => resolve(error === null)),
    );
    if (!found) return `"${tool}" is not installed (util-linux, iproute2)`;
  }
  return undefined;
}

function execute(command: string, args: string[], timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ exitCode: code, stdout, stderr });
    });
  });
}

function setupScript(vms: Record<string, string>): string {
  const lines = [
    'set -e',
    'mkdir -p /run/netns',
    'mount -t tmpfs none /run/netns',
    'ip link set lo up',
    'ip link add br0 type bridge',
    'ip addr add 169.254.169.254/16 dev br0',
    'ip link set br0 up',
  ];
  Object.entries(vms).forEach(([vm, address], i) => {
    lines.push(
      `ip netns add ${vm}`,
      `ip link add h${i} type veth peer name v${i}`,
      `ip link set h${i} master br0`,
      `ip link set h${i} up`,
      `ip link set v${i} netns ${vm}`,
      `ip netns exec ${vm} ip link set lo up`,
      `ip netns exec ${vm} ip addr add ${address}/16 dev v${i}`,
      `ip netns exec ${vm} ip link set v${i} up`,
    );
  });
  lines.push('echo "ready $$"', 'exec sleep 3600');
  return lines.join('\n');
}

/** Builds the lab: `vms` maps a namespace name to its link-local address. */
export async function startLab(vms: Record<string, string>): Promise<Lab> {
  const holder = spawn('unshare', ['-n', '-m', '--fork', '--kill-child', 'bash', '-c', setupScript(vms)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let errors = '';
  holder.stderr?.on('data', (chunk: Buffer) => {
    errors += chunk.toString();
  });
  const pid = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: holder.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      const match = /^ready (\d+)$/.exec(line);
      if (match?.[1] !== undefined) resolve(match[1]);
    });
    holder.once('exit', (code) => reject(new Error(`lab setup failed (${code}): ${errors}`)));
  });
  const enter = ['-t', pid, '-n', '-m', '--'];
  return {
    run: (command, args, timeoutMs = 30_000) => execute('nsenter', [...enter, command, ...args], timeoutMs),
    inVm: (vm, command, args, timeoutMs = 30_000) =>
      execute('nsenter', [...enter, 'ip', 'netns', 'exec', vm, command, ...args], timeoutMs),
    spawn: (command, args) =>
      spawn('nsenter', [...enter, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }),
    close: () =>
      new Promise<void>((resolve) => {
        if (holder.exitCode !== null) return resolve();
        holder.once('exit', () => resolve());
        // unshare --fork ignores SIGTERM while it waits; ending its child (the holder shell) ends both.
        process.kill(Number(pid), 'SIGTERM');
      }),
  };
}
