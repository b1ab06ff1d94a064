import type { MessagePort, Transferable } from 'node:worker_threads';

/*
 * Calls from one thread answered in another, over a MessagePort: numbered, answered in any order. A call whose
 * answer was a failure rejects with its message; when the other side's thread ends (the port closes), the calls
 * still in flight reject.
 */

type Call<A> = { id: number; arg: A };
type Answer<R> = { id: number; result: R } | { id: number; error: string };

/** `transfer`: buffers in the argument (or result) that change hands instead of being copied. */
type Transfers<T> = (value: T) => Transferable[];

export function caller<A, R>(port: MessagePort, transfer: Transfers<A> = () => []): (arg: A) => Promise<R> {
  const pending = new Map<number, { resolve: (r: R) => void; reject: (err: Error) => void }>();
  const stopped = () => new Error('the thread answering these calls has stopped');
  let closed = false;
  let next = 0;
  port.on('message', (answer: Answer<R>) => {
    const p = pending.get(answer.id);
    pending.delete(answer.id);
    if ('error' in answer) p?.reject(new Error(answer.error));
    else p?.resolve(answer.result);
  });
  port.on('close', () => {
    closed = true;
    for (const p of pending.values()) p.reject(stopped());
    pending.clear();
  });
  return (arg) => new Promise<R>((resolve, reject) => {
    if (closed) return reject(stopped()); // a closed port drops messages silently
    const id = next++;
    pending.set(id, { resolve, reject });
    port.postMessage({ id, arg } satisfies Call<A>, transfer(arg));
  });
}

export function answerer<A, R>(port: MessagePort, fn: (arg: A) => Promise<R>, transfer: Transfers<R> = () => []): void {
  port.on('message', ({ id, arg }: Call<A>) => {
    fn(arg).then(
      (result) => port.postMessage({ id, result } satisfies Answer<R>, transfer(result)),
      (err: unknown) => port.postMessage({ id, error: err instanceof Error ? err.message : String(err) } satisfies Answer<R>),
    );
  });
}
