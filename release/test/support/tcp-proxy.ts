/**
 * A TCP proxy on 127.0.0.1 in front of the test PostgreSQL, whose connections the test can cut:
 * the network reset a deploy meets when a link drops, with the server itself still up and
 * accepting new connections.
 */
import type { Socket } from "bun";
import { choosePort } from "./postgres.ts";

export interface TcpProxy {
  readonly port: number;
  /** postgresql://… of `url` with the proxy's port instead. */
  via(url: string): string;
  /** How many connections clients have opened through the proxy so far. */
  readonly accepted: number;
  /** Resets every connection open now; new ones are still accepted. */
  cut(): void;
  stop(): void;
}

interface Pair {
  upstream: Socket<undefined> | undefined;
  /** What the client sent before the upstream connection was open. */
  pending: Uint8Array[];
}

const START_ATTEMPTS = 5;

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Map<Socket<Pair>, Pair>();
  let accepted = 0;
  let lastError: unknown;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const port = choosePort();
    try {
      const server = Bun.listen<Pair>({
        hostname: "127.0.0.1",
        port,
        socket: {
          open(client) {
            accepted++;
            const pair: Pair = { upstream: undefined, pending: [] };
            client.data = pair;
            pairs.set(client, pair);
            void Bun.connect<undefined>({
              hostname: "127.0.0.1",
              port: targetPort,
              socket: {
                open(upstream) {
                  pair.upstream = upstream;
                  for (const chunk of pair.pending) upstream.write(chunk);
                  pair.pending = [];
                },
                data: (_upstream, chunk) => void client.write(chunk),
                close: () => void client.end(),
                error: () => client.terminate(),
              },
            }).catch(() => client.terminate());
          },
          data(client, chunk) {
            const pair = client.data;
            if (pair.upstream) pair.upstream.write(chunk);
            else pair.pending.push(new Uint8Array(chunk));
          },
          close(client) {
            client.data.upstream?.end();
            pairs.delete(client);
          },
          error(client) {
            client.data.upstream?.terminate();
            pairs.delete(client);
          },
        },
      });
      const cut = () => {
        for (const [client, pair] of pairs) {
          pair.upstream?.terminate();
          client.terminate();
        }
        pairs.clear();
      };
      return {
        port,
        get accepted() {
          return accepted;
        },
        via: (url) => {
          const parsed = new URL(url);
          parsed.port = String(port);
          return parsed.toString();
        },
        cut,
        stop() {
          cut();
          server.stop(true);
        },
      };
    } catch (error) {
      lastError = error;
    }
  }
  throw new Error(`could not start a TCP proxy: ${String(lastError)}`);
}
