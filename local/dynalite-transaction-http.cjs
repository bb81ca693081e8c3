'use strict';
/**
 * TransactWriteItems over HTTP for the dynalite stand-in (see `dynalite-transactions.cjs` for how a
 * transaction is checked and written): the request body read with a size bound, DynamoDB's error shapes,
 * and the idempotency of `ClientRequestToken`, remembered for ten minutes.
 */
const { createHash, randomBytes } = require('node:crypto');
const Module = require('node:module');

const crc32 = Module.createRequire(require.resolve('dynalite'))('buffer-crc32');

const maxRequestBytes = 16 * 1024 * 1024;
const idempotencyMs = 10 * 60 * 1000;
const maxRememberedTokens = 10_000;

/** A DynamoDB error as dynalite answers it: HTTP status and a body with `__type` and `message`. */
class AwsError extends Error {
  constructor(type, message, statusCode = 400, extra = {}) {
    super(message);
    this.statusCode = statusCode;
    this.body = { __type: type, ...(message === undefined ? {} : { message }), ...extra };
  }
}

function sendJson(res, statusCode, data) {
  const body = JSON.stringify(data);
  res.statusCode = statusCode;
  res.setHeader('x-amzn-RequestId', randomBytes(26).toString('hex').toUpperCase());
  res.setHeader('x-amz-crc32', crc32.unsigned(body));
  res.setHeader('Content-Type', 'application/x-amz-json-1.0');
  res.setHeader('Content-Length', Buffer.byteLength(body, 'utf8'));
  res.end(body);
}

/** Successful requests by token, oldest first, for ten minutes. */
function tokenMemory() {
  const tokens = new Map();
  const prune = (now) => {
    for (const [token, entry] of tokens) {
      if (now - entry.at < idempotencyMs && tokens.size <= maxRememberedTokens) break;
      tokens.delete(token);
    }
  };
  return {
    /** `true`: already done; throws on the same token with other parameters. */
    seen(token, digest, now) {
      prune(now);
      const entry = tokens.get(token);
      if (entry === undefined) return false;
      if (entry.digest !== digest) {
        throw new AwsError(
          'com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException',
          'The request uses the same client token as a previous, but non-identical request',
        );
      }
      return true;
    },
    remember(token, digest, now) {
      tokens.set(token, { digest, at: now });
      prune(now);
    },
  };
}

function digestOf(request) {
  const {
    ClientRequestToken: _token,
    ReturnConsumedCapacity: _c,
    ReturnItemCollectionMetrics: _m,
    ...rest
  } = request;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex');
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let length = 0;
    req.on('data', (chunk) => {
      length += chunk.length;
      if (length > maxRequestBytes) {
        reject(new AwsError('com.amazon.coral.service#SerializationException', 'request too large', 413));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function transactionHandler(transact) {
  const memory = tokenMemory();
  return async (req, res) => {
    try {
      const text = await readBody(req);
      let request;
      try {
        request = JSON.parse(text);
      } catch {
        throw new AwsError('com.amazon.coral.service#SerializationException', 'request body is not JSON');
      }
      if (typeof request !== 'object' || request === null) {
        throw new AwsError(
          'com.amazon.coral.service#SerializationException',
          'request body is not an object',
        );
      }
      const token = typeof request.ClientRequestToken === 'string' ? request.ClientRequestToken : undefined;
      const digest = token === undefined ? '' : digestOf(request);
      if (token !== undefined && memory.seen(token, digest, Date.now())) return sendJson(res, 200, {});
      await transact(request);
      if (token !== undefined) memory.remember(token, digest, Date.now());
      sendJson(res, 200, {});
    } catch (error) {
      if (error?.statusCode && error.body) return sendJson(res, error.statusCode, error.body);
      sendJson(res, 500, {
        __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError',
        message: error instanceof Error ? error.message : String(error),
      });
    }
  };
}

module.exports = { AwsError, transactionHandler };
