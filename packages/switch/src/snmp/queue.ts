/**
 * One operation at a time per switch, across every client in the process: switch agents are slow
 * single-threaded boxes, and a read-back must not interleave with someone else's write.
 */
const tails = new Map<string, Promise<unknown>>();

export function serialize<T>(key: string, operation: () => Promise<T>): Promise<T> {
  const previous = tails.get(key) ?? Promise.resolve();
  const run = previous.then(operation, operation);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  tails.set(key, tail);
  void tail.then(() => {
    if (tails.get(key) === tail) tails.delete(key);
  });
  return run;
}
