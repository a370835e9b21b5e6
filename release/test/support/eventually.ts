/**
 * Waiting for something another process does, with a bound: `probe` is asked again every few
 * milliseconds until it returns a value, and the test fails naming `what` once `withinMs` pass.
 */
const PROBE_INTERVAL_MS = 20;

export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, withinMs = 15_000): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up after ${withinMs} ms waiting for ${what}`);
    await Bun.sleep(PROBE_INTERVAL_MS);
  }
}
