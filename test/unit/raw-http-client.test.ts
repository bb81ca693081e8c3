import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type ConnectionCloseEvent,
  createRawClient,
  type RawClient,
  type RawClientOptions,
  ResponseParser,
  serialisePost,
} from '../support/raw-http-client.ts';

const MiB = 1024 * 1024;

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

/** One `node:http` server for the file; each test installs its handler and sees the sockets it opened. */
let server: Server;
let url: string;
let handler: Handler;
let requestCount: number;
let serverSockets: Socket[];
let clients: RawClient[];

beforeAll(async () => {
  server = createServer((req, res) => handler(req, res, requestCount++));
  server.on('connection', (socket) => serverSockets.push(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/thing?x=1`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  requestCount = 0;
  serverSockets = [];
  clients = [];
  server.keepAliveTimeout = 5000;
  handler = (_req, res) => res.end('ok');
});

afterEach(async () => {
  await Promise.all(clients.map((client) => client.close()));
  server.closeAllConnections();
});

function client(options: Partial<RawClientOptions> = {}): RawClient {
  const created = createRawClient({ url, connections: 4, ...options });
  clients.push(created);
  return created;
}

/** 200 for most requests, 404 (with a body) every third, decided by the server's request counter. */
const statusFor = (n: number) => (n % 3 === 2 ? 404 : 200);
const mixed: Handler = (_req, res, n) => {
  const status = statusFor(n);
  res.writeHead(status, { 'Content-Type': 'text/plain' });
  res.end(status === 200 ? `request ${n}` : 'no such thing here');
};

describe('raw HTTP client against node:http', () => {
  it('sends the pre-serialised GET with the given headers and keep-alive', async () => {
    const seen: Array<{ method?: string; url?: string; headers: IncomingMessage['headers'] }> = [];
    handler = (req, res) => {
      seen.push({ method: req.method, url: req.url, headers: req.headers });
      res.end();
    };
    const raw = client({ headers: { Authorization: 'Bearer abc', Accept: 'application/json' } });

    expect(await raw.send()).toBe(200);
    expect(seen).toEqual([
      {
        method: 'GET',
        url: '/v1/thing?x=1',
        headers: {
          host: new URL(url).host,
          authorization: 'Bearer abc',
          accept: 'application/json',
          connection: 'keep-alive',
        },
      },
    ]);
  });

  it('binds every socket to the given source address, as a metadata instance would be', async () => {
    const raw = client({ connections: 2, localAddress: '127.0.0.9' });
    const results = await Promise.all([raw.send(), raw.send(), raw.send()]);
    expect(results).toEqual([200, 200, 200]);
    expect(serverSockets.length).toBeGreaterThan(0);
    expect(serverSockets.map((socket) => socket.remoteAddress)).toEqual(serverSockets.map(() => '127.0.0.9'));
  });

  it('answers many sequential requests with the statuses the server sent, on one kept-alive socket', async () => {
    handler = mixed;
    const raw = client({ connections: 1 });

    const results: Array<number | string> = [];
    for (let i = 0; i < 600; i++) results.push(await raw.send());

    expect(results).toEqual(Array.from({ length: 600 }, (_, n) => statusFor(n)));
    expect(serverSockets).toHaveLength(1);
    expect(raw.stats().opened).toBe(1);
  });

  it('answers concurrent requests over the pool, queueing FIFO when every socket is busy', async () => {
    // Each response is held back a turn, so requests pile up in the client's queue.
    handler = (_req, res, n) =>
      setImmediate(() => {
        res.writeHead(200 + (n % 7)); // 200..206: the status tells which request the server answered
        res.end('x'.repeat(n % 50));
      });
    const raw = client({ connections: 1 });

    const results = await Promise.all(Array.from({ length: 300 }, () => raw.send()));

    // With one connection, the server answers in the order the client sent: the order of the calls.
    expect(results).toEqual(Array.from({ length: 300 }, (_, n) => 200 + (n % 7)));
    expect(serverSockets).toHaveLength(1);
  });

  it('spreads a burst over every connection and never more', async () => {
    handler = mixed;
    const raw = client({ connections: 8 });

    const results = await Promise.all(Array.from({ length: 3000 }, () => raw.send()));

    const count = (status: number) => results.filter((r) => r === status).length;
    expect(count(404)).toBe(1000);
    expect(count(200)).toBe(2000);
    expect(serverSockets).toHaveLength(8);
    expect(raw.stats()).toEqual({ opened: 8, queued: 0 });
  });

  it('never has two requests in flight on one socket (no pipelining)', async () => {
    // A raw server that answers each request a turn later and notes a request arriving before its answer.
    let overlapped = 0;
    let answered = 0;
    const rawServer = createNetServer((socket) => {
      let waiting = false;
      let buffered = '';
      socket.on('data', (data) => {
        buffered += data.toString('latin1');
        let end = buffered.indexOf('\r\n\r\n');
        while (end !== -1) {
          buffered = buffered.slice(end + 4);
          if (waiting) overlapped++;
          waiting = true;
          setImmediate(() => {
            waiting = false;
            answered++;
            socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
          });
          end = buffered.indexOf('\r\n\r\n');
        }
      });
    });
    rawServer.listen(0, '127.0.0.1');
    await once(rawServer, 'listening');
    try {
      const raw = client({
        url: `http://127.0.0.1:${(rawServer.address() as AddressInfo).port}/`,
        connections: 3,
      });
      const results = await Promise.all(Array.from({ length: 500 }, () => raw.send()));
      expect(results.every((r) => r === 200)).toBe(true);
      expect(answered).toBe(500);
      expect(overlapped).toBe(0);
      await raw.close();
    } finally {
      await new Promise((resolve) => rawServer.close(resolve));
    }
  });

  it('handles empty bodies: content-length 0, 204 and 304', async () => {
    const kinds = [
      (res: ServerResponse) => res.writeHead(200, { 'Content-Length': '0' }).end(),
      (res: ServerResponse) => res.writeHead(204).end(),
      (res: ServerResponse) => res.writeHead(304).end(),
      (res: ServerResponse) => res.writeHead(404, { 'Content-Length': '0' }).end(),
      (res: ServerResponse) => res.writeHead(201).end('after the empty ones'),
    ];
    handler = (_req, res, n) => kinds[n % kinds.length]?.(res);
    const raw = client({ connections: 1 });

    const results: Array<number | string> = [];
    for (let i = 0; i < 50; i++) results.push(await raw.send());

    expect(results).toEqual(Array.from({ length: 50 }, (_, n) => [200, 204, 304, 404, 201][n % 5]));
    expect(serverSockets).toHaveLength(1);
  });

  it('skips 1 MiB bodies that arrive in many packets, and the next response on the socket parses', async () => {
    const big = Buffer.alloc(MiB, 'b');
    // Odd requests get the big body in pieces, even ones a short 202: an off-by-one in the skip breaks both.
    handler = (_req, res, n) => {
      if (n % 2 === 1) {
        res.writeHead(202, { 'Content-Length': '3' });
        res.end('end');
        return;
      }
      res.writeHead(200, { 'Content-Length': String(big.length) });
      let offset = 0;
      const more = () => {
        while (offset < big.length) {
          const piece = big.subarray(offset, offset + 100_000 + n);
          offset += piece.length;
          if (!res.write(piece)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    };
    const raw = client({ connections: 2 });

    const sequential: Array<number | string> = [];
    for (let i = 0; i < 6; i++) sequential.push(await raw.send());
    const concurrent = await Promise.all(Array.from({ length: 10 }, () => raw.send()));

    expect(sequential).toEqual([200, 202, 200, 202, 200, 202]);
    expect(concurrent.filter((r) => r === 200)).toHaveLength(5);
    expect(concurrent.filter((r) => r === 202)).toHaveLength(5);
    expect(serverSockets).toHaveLength(2);
  });

  it('skips chunked bodies, with trailers, and keeps the socket for the next response', async () => {
    handler = (_req, res, n) => {
      if (n % 3 === 2) {
        res.writeHead(203, { 'Content-Length': '5' }).end('fixed');
        return;
      }
      res.writeHead(n % 3 === 0 ? 200 : 404, { 'Content-Type': 'text/plain', Trailer: 'X-Checksum' });
      for (let i = 0; i < 5; i++) res.write(`chunk ${i} `.repeat(1 + n * 10));
      res.write(Buffer.alloc(200_000, 'c'));
      res.addTrailers({ 'X-Checksum': 'abc' });
      res.end();
    };
    const raw = client({ connections: 1 });

    const results: Array<number | string> = [];
    for (let i = 0; i < 30; i++) results.push(await raw.send());

    expect(results).toEqual(Array.from({ length: 30 }, (_, n) => [200, 404, 203][n % 3]));
    expect(serverSockets).toHaveLength(1);
  });

  it('reports a socket the server destroys mid-response, and the next request succeeds on a new socket', async () => {
    const closes: ConnectionCloseEvent[] = [];
    handler = (req, res, n) => {
      if (n !== 1) {
        res.end('fine');
        return;
      }
      res.writeHead(200, { 'Content-Length': '1000' });
      res.write('only ten b', () => req.socket.destroy());
    };
    const raw = client({ connections: 1, onConnectionClose: (event) => closes.push(event) });

    expect(await raw.send()).toBe(200);
    const broken = await raw.send();
    const after = await raw.send();

    expect(broken).toMatch(/^(ECONNRESET|connection closed by the server) on connection 1 \(mid-response/);
    expect(broken).toContain('of 1000 bytes');
    expect(after).toBe(200);
    expect(serverSockets).toHaveLength(2);
    expect(closes).toEqual([{ connection: 1, inFlight: true, reason: broken }]);
  });

  it('reports a server that closes the socket before answering', async () => {
    handler = (req, res, n) => (n === 0 ? req.socket.destroy() : res.end());
    const raw = client({ connections: 1 });

    expect(await raw.send()).toMatch(/on connection 1 \(before the response\)$/);
    expect(await raw.send()).toBe(200);
  });

  it('reports a refused connection for each request, without throwing', async () => {
    const closed = createNetServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const raw = client({ url: `http://127.0.0.1:${port}/`, connections: 2 });

    const results = await Promise.all([raw.send(), raw.send(), raw.send()]);

    expect(results).toEqual([
      'ECONNREFUSED on connection 1 (before the response)',
      'ECONNREFUSED on connection 2 (before the response)',
      expect.stringMatching(/^ECONNREFUSED on connection [12] \(before the response\)$/),
    ]);
  });

  it('reopens sockets the server closes while idle (keep-alive timeout) without an error', async () => {
    server.keepAliveTimeout = 30;
    handler = mixed;
    const idleCloses: number[] = [];
    let allIdleClosed: () => void = () => {};
    const closedIdle = new Promise<void>((resolve) => {
      allIdleClosed = resolve;
    });
    const errors: ConnectionCloseEvent[] = [];
    const raw = client({
      connections: 3,
      onConnectionClose: (event) => {
        if (event.inFlight) errors.push(event);
        else idleCloses.push(event.connection);
        if (idleCloses.length === 3) allIdleClosed();
      },
    });

    const first = await Promise.all(Array.from({ length: 30 }, () => raw.send()));
    await closedIdle; // the server's keep-alive timeout closed all three, and the client saw it
    const second = await Promise.all(Array.from({ length: 30 }, () => raw.send()));

    expect([...first, ...second]).toEqual(expect.arrayContaining([200, 404]));
    expect([...first, ...second].every((r) => r === 200 || r === 404)).toBe(true);
    expect(idleCloses.sort()).toEqual([1, 2, 3]);
    expect(errors).toEqual([]);
    expect(serverSockets).toHaveLength(6);
  });

  it('reopens after the server asks to close the connection, without an error', async () => {
    handler = (_req, res, n) => {
      if (n % 2 === 0) res.setHeader('Connection', 'close');
      res.end('bye');
    };
    const raw = client({ connections: 1 });

    const results: Array<number | string> = [];
    for (let i = 0; i < 10; i++) results.push(await raw.send());

    expect(results).toEqual(Array(10).fill(200));
    // Requests 0, 2, 4, 6 and 8 end their socket; 1, 3, 5, 7 and 9 each open the next one.
    expect(serverSockets).toHaveLength(6);
  });

  it('replaces a socket idle longer than idleTimeoutMs instead of reusing it', async () => {
    const raw = client({ connections: 1, idleTimeoutMs: 0 });
    handler = (_req, res) => res.end();
    // performance.now() advances between requests, so every reuse is past a 0 ms idle limit.
    for (let i = 0; i < 3; i++) expect(await raw.send()).toBe(200);
    expect(serverSockets).toHaveLength(3);
  });

  it('close() resolves requests in flight and queued, and later sends, with "client closed"', async () => {
    handler = () => {}; // never answers
    const raw = client({ connections: 1 });
    const inFlight = raw.send();
    const queued = raw.send();
    await once(server, 'request');

    await raw.close();

    expect(await inFlight).toBe('client closed');
    expect(await queued).toBe('client closed');
    expect(await raw.send()).toBe('client closed');
  });

  it('reports bytes after a complete response as a protocol error, and reconnects', async () => {
    handler = (req, res, n) => {
      if (n === 0) req.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA');
      else res.end();
    };
    const raw = client({ connections: 1 });

    expect(await raw.send()).toBe(
      'protocol error on connection 1: 5 unexpected byte(s) after an HTTP 200 response',
    );
    expect(await raw.send()).toBe(200);
    expect(serverSockets).toHaveLength(2);
  });

  it('names what it does not support: a body ended by closing the connection', async () => {
    // Written on the socket directly: node:http itself always frames a keep-alive response.
    handler = (req) => req.socket.end('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close');
    const raw = client({ connections: 1 });

    expect(await raw.send()).toMatch(
      /^protocol error on connection 1: HTTP 200 response with neither content-length nor transfer-encoding: chunked/,
    );
  });
});

describe('ResponseParser', () => {
  const responses = [
    'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello',
    'HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n',
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nCONTENT-LENGTH: 3\r\n\r\nabc',
    'HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n' +
      '5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n',
    'HTTP/1.1 204 No Content\r\n\r\n',
    'HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok',
    'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok',
    'HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: *\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 1\r\n\r\n!',
    'HTTP/1.1 200 OK\r\nX-Content-Length: 99\r\nContent-Length:\t3 \r\n\r\nabc',
    'HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 4\r\n\r\nlast',
  ];
  const expected = [
    { status: 200, keepAlive: true },
    { status: 404, keepAlive: true },
    { status: 201, keepAlive: true },
    { status: 500, keepAlive: true },
    { status: 204, keepAlive: true },
    { status: 200, keepAlive: true },
    { status: 200, keepAlive: false },
    { status: 200, keepAlive: false },
    { status: 200, keepAlive: true },
    { status: 200, keepAlive: false },
  ];
  const all = Buffer.from(responses.join(''), 'latin1');

  function parse(pieces: Buffer[]): Array<{ status: number; keepAlive: boolean }> {
    const parser = new ResponseParser();
    const seen: Array<{ status: number; keepAlive: boolean }> = [];
    for (const piece of pieces) {
      let pos = 0;
      while (pos < piece.length) {
        pos = parser.execute(piece, pos);
        expect(parser.error).toBeNull();
        if (parser.complete) {
          parser.complete = false;
          seen.push({ status: parser.status, keepAlive: parser.keepAlive });
        }
      }
    }
    expect(parser.inResponse).toBe(false);
    return seen;
  }

  it('parses several responses in one buffer', () => {
    expect(parse([all])).toEqual(expected);
  });

  it('parses the same bytes split at every offset, and a byte at a time', () => {
    for (let split = 1; split < all.length; split++) {
      expect(parse([all.subarray(0, split), all.subarray(split)])).toEqual(expected);
    }
    expect(parse(Array.from(all, (byte) => Buffer.from([byte])))).toEqual(expected);
  });

  it.each([
    ['a status line that is not HTTP/1.x', 'HTTP/2 200\r\n\r\n', /not an HTTP\/1.x status line/],
    ['a status line with a bad code', 'HTTP/1.1 2x0 OK\r\n\r\n', /not an HTTP\/1.x status line/],
    ['a header line without a colon', 'HTTP/1.1 200 OK\r\nContent-Length 1\r\n\r\n', /without a colon/],
    ['a long header line without a colon', `HTTP/1.1 200 OK\r\n${'x'.repeat(40)}\r\n\r\n`, /without a colon/],
    ['an invalid content-length', 'HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n', /invalid content-length/],
    [
      'conflicting content-lengths',
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
      /conflicting content-length/,
    ],
    [
      'another transfer-encoding',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n',
      /unsupported transfer-encoding: "gzip"/,
    ],
    [
      'a body ended by closing',
      'HTTP/1.1 200 OK\r\n\r\nbody',
      /neither content-length nor transfer-encoding: chunked/,
    ],
    [
      'a bad chunk size',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      /invalid chunk size line/,
    ],
    [
      'a chunk longer than its size',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n',
      /not followed by CRLF/,
    ],
    ['headers that never end', `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(70_000)}`, /more than 65536 bytes/],
  ])('fails clearly on %s', (_name, text, message) => {
    const parser = new ResponseParser();
    parser.execute(Buffer.from(text, 'latin1'), 0);
    expect(parser.complete).toBe(false);
    expect(parser.error).toMatch(message);
  });

  it('says where in a response it is', () => {
    const parser = new ResponseParser();
    expect(parser.where()).toBe('before the response');
    parser.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'), 0);
    expect(parser.where()).toBe('mid-response, in the body after 3 of 10 bytes');
    parser.execute(Buffer.from('defghij'), 0);
    expect(parser.complete).toBe(true);
    expect(parser.where()).toBe('before the response');
  });
});

describe('the raw client with its own requests', () => {
  it('sends the given POSTs in turn, bodies and lengths intact, over keep-alive sockets', async () => {
    const seen: string[] = [];
    handler = (req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString('utf8');
      });
      req.on('end', () => {
        seen.push(`${req.method} ${req.url} ${req.headers['content-length']} ${body}`);
        res.end('ok');
      });
    };
    const target = new URL(url);
    const requests = ['<a/>', '<bb/>', '<ccc/>'].map((body) =>
      serialisePost(target, { 'Content-Type': 'text/xml' }, Buffer.from(body)),
    );
    const raw = client({ connections: 1, requests });
    const results: unknown[] = [];
    for (let i = 0; i < 4; i++) results.push(await raw.send());
    expect(results).toEqual([200, 200, 200, 200]);
    expect(seen).toEqual([
      'POST /v1/thing?x=1 4 <a/>',
      'POST /v1/thing?x=1 5 <bb/>',
      'POST /v1/thing?x=1 6 <ccc/>',
      'POST /v1/thing?x=1 4 <a/>',
    ]);
    expect(raw.stats().opened).toBe(1);
    expect(() => createRawClient({ url, connections: 1, requests: [] })).toThrow(/at least one request/);
  });

  it('builds each request as it sends it when given nextRequest', async () => {
    const seen: string[] = [];
    handler = (req, res) => {
      seen.push(`${req.url} ${req.headers.authorization}`);
      res.end('ok');
    };
    const host = new URL(url).host;
    let built = 0;
    const raw = client({
      connections: 2,
      nextRequest: () => {
        built++;
        return Buffer.from(
          `GET /v1/n/${built} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer t${built}\r\nConnection: keep-alive\r\n\r\n`,
          'latin1',
        );
      },
    });
    const results = await Promise.all([raw.send(), raw.send(), raw.send()]);
    expect(results).toEqual([200, 200, 200]);
    expect(built).toBe(3);
    expect(seen.sort()).toEqual(['/v1/n/1 Bearer t1', '/v1/n/2 Bearer t2', '/v1/n/3 Bearer t3']);
    expect(raw.stats().opened).toBe(2);
  });
});
