/**
 * A request the user cancelled. vscode-languageclient answers a cancelled request either
 * with its default value (undefined) or with a CancellationError, depending on timing;
 * both become this error, so no command takes an undefined result for a finished one
 * ("exported to …" after Cancel) and none reports a cancellation as a failure.
 */
export class Cancelled extends Error {
  constructor() {
    super('Cancelled.');
    this.name = 'Cancelled';
  }
}

export interface Token {
  readonly isCancellationRequested: boolean;
}

/** Runs `request`; a cancelled token turns its result or its error into `Cancelled`. */
export async function unlessCancelled<R>(token: Token | undefined, request: () => Promise<R>): Promise<R> {
  let result: R;
  try {
    result = await request();
  } catch (err) {
    if (token?.isCancellationRequested === true) {
      throw new Cancelled();
    }
    throw err;
  }
  if (token?.isCancellationRequested === true) {
    throw new Cancelled();
  }
  return result;
}
