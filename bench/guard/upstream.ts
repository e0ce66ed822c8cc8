/**
 * A minimal metadata-service stand-in for the guard benchmark: answers every request with a small
 * text body and `Connection: close`, as IMDS does, so every request is a new TCP connection.
 * Usage: node build/bench/guard/upstream.js PORT
 */
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? '0');
const body = 'i-0123456789abcdef0';
const server = createServer((req, res) => {
  req.resume();
  res.writeHead(200, {
    'content-type': 'text/plain',
    'content-length': String(body.length),
    server: 'EC2ws',
    connection: 'close',
  });
  res.end(body);
});
server.keepAliveTimeout = 0;
server.listen(port, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`${typeof a === 'object' && a ? a.port : port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
