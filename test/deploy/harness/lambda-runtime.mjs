// A stand-in for the Lambda Node.js runtime, run as its own process per function (one warm container).
// Plain JavaScript on purpose: the bundle must load exactly as it would on Lambda, without the TypeScript
// loader the tests use. The parent starts it with the asset mounted at LAMBDA_TASK_ROOT and the function's
// environment only; it talks over the IPC channel:
//   child → parent  { type: 'init', ok, error?, unsetEnv }   once, after the handler module was imported
//   parent → child  { type: 'invoke', id, event, context }
//   child → parent  { type: 'result', id, ok, value?, error?, unsetEnv }
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// Node adds these to pass the IPC channel; Lambda sets neither, so the handler must not see them.
delete process.env.NODE_CHANNEL_FD;
delete process.env.NODE_CHANNEL_SERIALIZATION_MODE;

/** Names read from the environment while unset: the parent decides which of them are mistakes. */
const unsetReads = new Set();
const realEnv = process.env;
process.env = new Proxy(realEnv, {
  get(target, key, receiver) {
    if (typeof key === 'string' && !Object.hasOwn(target, key)) unsetReads.add(key);
    return Reflect.get(target, key, receiver);
  },
  has(target, key) {
    if (typeof key === 'string' && !Object.hasOwn(target, key)) unsetReads.add(key);
    return Reflect.has(target, key);
  },
});

function describe(error) {
  if (error instanceof Error) {
    const causes = [];
    for (let cause = error.cause; cause instanceof Error && causes.length < 5; cause = cause.cause) {
      causes.push(`${cause.name}: ${cause.message}`);
    }
    return { errorType: error.name, errorMessage: error.message, stack: error.stack ?? '', causes };
  }
  return { errorType: typeof error, errorMessage: String(error), stack: '', causes: [] };
}

function send(message) {
  process.send?.({ ...message, unsetEnv: [...unsetReads] });
}

/** `index.handler` is module `index` (.mjs, .js or .cjs) in the task root, export `handler`. */
async function loadHandler() {
  const spec = realEnv._HANDLER ?? '';
  const taskRoot = realEnv.LAMBDA_TASK_ROOT ?? '';
  const dot = spec.lastIndexOf('.');
  if (dot <= 0) throw new Error(`handler "${spec}" is not MODULE.EXPORT`);
  const modulePath = spec.slice(0, dot);
  const exportName = spec.slice(dot + 1);
  const file = ['.mjs', '.js', '.cjs']
    .map((extension) => join(taskRoot, `${modulePath}${extension}`))
    .find((candidate) => existsSync(candidate));
  if (file === undefined) {
    const error = new Error(`Cannot find module '${modulePath}' in ${taskRoot}`);
    error.name = 'Runtime.ImportModuleError';
    throw error;
  }
  const module = await import(pathToFileURL(file).href);
  const handler = module[exportName];
  if (typeof handler !== 'function') {
    const error = new Error(`${modulePath}.${exportName} is undefined or not exported`);
    error.name = 'Runtime.HandlerNotFound';
    throw error;
  }
  return handler;
}

function lambdaContext(context) {
  const deadline = Date.now() + context.timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: context.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: context.invokedFunctionArn,
    memoryLimitInMB: String(context.memoryMiB),
    awsRequestId: context.requestId,
    logGroupName: context.logGroupName,
    logStreamName: context.logStreamName,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done() {},
    fail() {},
    succeed() {},
  };
}

process.on('uncaughtException', (error) => {
  send({ type: 'crash', error: describe(error) });
  process.exit(1);
});
process.on('unhandledRejection', (error) => {
  send({ type: 'crash', error: describe(error) });
  process.exit(1);
});

let handler;
try {
  handler = await loadHandler();
  send({ type: 'init', ok: true });
} catch (error) {
  send({ type: 'init', ok: false, error: describe(error) });
}

process.on('message', async (message) => {
  if (message?.type !== 'invoke') return;
  if (handler === undefined) {
    send({ type: 'result', id: message.id, ok: false, error: { errorType: 'Runtime.InitError' } });
    return;
  }
  try {
    const value = await handler(message.event, lambdaContext(message.context));
    // Lambda returns the JSON serialisation of the result; undefined becomes null.
    send({ type: 'result', id: message.id, ok: true, value: JSON.parse(JSON.stringify(value ?? null)) });
  } catch (error) {
    send({ type: 'result', id: message.id, ok: false, error: describe(error) });
  }
});
