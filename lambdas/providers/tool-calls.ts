import type { StreamEvent } from '../core/chat';

/**
 * Numbers an answer's tool calls 0.. in the order they start, keyed by the upstream's own block reference, and
 * remembers which streamed arguments: a call that streamed none still gets `'{}'`, since clients parse what
 * they accumulated.
 */
export class ToolCalls {
  private readonly indexes = new Map<number, number>();
  private readonly withArguments = new Set<number>();

  get count(): number {
    return this.indexes.size;
  }

  start(key: number, id: string, name: string): StreamEvent {
    const index = this.indexes.size;
    this.indexes.set(key, index);
    return { type: 'tool_call', index, id, name };
  }

  /** The event for an arguments fragment of the call started as `key`, or null if `key` is no call. */
  arguments(key: number, delta: string): StreamEvent | null {
    const index = this.indexes.get(key);
    if (index === undefined || delta === '') return null;
    this.withArguments.add(index);
    return { type: 'tool_arguments', index, delta };
  }

  /** At the end of the call started as `key`: `'{}'` if it streamed no arguments, else nothing. */
  stop(key: number): StreamEvent | null {
    const index = this.indexes.get(key);
    return index !== undefined && !this.withArguments.has(index) ? { type: 'tool_arguments', index, delta: '{}' } : null;
  }
}
