/**
 * The reference point of the guard benchmark: the naive Node reverse proxy (no policy, no events,
 * no limits), as most hand-written IMDS proxies are. Usage: node naive-proxy.js LISTEN_PORT UPSTREAM_PORT
 */
import { Agent, createServer, request } from 'node:http';

const port = Number(process.argv[2] ?? '0');
const upstreamPort = Number(process.argv[3]);
const agent = new Agent({ keepAlive: false });
const server = createServer((req, res) => {
  const up = request(
    { host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers, agent },
    (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    },
  );
  up.on('error', () => {
    res.statusCode = 502;
    res.end();
  });
  req.pipe(up);
});
server.listen(port, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`${typeof a === 'object' && a ? a.port : port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
