import type { FinishReason, StreamEvent } from './chat';
import { GatewayError } from './errors';
import type { TokenUsage } from './pricing';

/** Where an answer's deltas go: the SSE writer when streaming, an accumulator otherwise. */
export interface CompletionSink {
  text(delta: string): void;
  toolCall(index: number, id: string, name: string): void;
  toolArguments(index: number, fragment: string): void;
}

/** The provider's stream broke: before the first byte it becomes an HTTP error, after it a final SSE error event. */
export const upstreamStreamError = (message: string) => new GatewayError(502, message, 'api_error', 'upstream_stream_error');

/**
 * Feeds the gateway's stream events to a sink and keeps what the answer reported about itself: its finish
 * reason and its usage (kept even when the stream breaks later, so that what was reported is billed).
 */
export class AnswerReader {
  finish: FinishReason | null = null;
  usage: TokenUsage | null = null;

  constructor(private readonly sink: CompletionSink) {}

  handle(e: StreamEvent): void {
    switch (e.type) {
      case 'text':
        this.sink.text(e.delta);
        return;
      case 'tool_call':
        this.sink.toolCall(e.index, e.id, e.name);
        return;
      case 'tool_arguments':
        this.sink.toolArguments(e.index, e.delta);
        return;
      case 'finish':
        this.finish = e.reason;
        return;
      case 'usage':
        this.usage = e.usage;
        return;
    }
  }

  /** A stream that ended without a finish was cut off: never report it as a normal finish. */
  complete(): FinishReason {
    if (!this.finish) throw upstreamStreamError('The model provider ended the response stream before it was complete.');
    return this.finish;
  }
}
