// Small socket facts tests need: a free port to hand to a child process, and whether a port
// refuses connections (a draining or stopped listener).

import { once } from 'node:events';
import { connect, createServer } from 'node:net';

/** A port that was free a moment ago on 127.0.0.1 (for processes that must be told their port). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** True when a TCP connect to 127.0.0.1:port is refused (nothing listens there). */
export function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}
