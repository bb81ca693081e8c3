import { PermanentError } from '../errors.ts';

/**
 * A write lost to another write of the same instance between its read and its conditional write. Nothing
 * of the losing write is visible: its body is never referenced, and the sweep collects it.
 */
export class InstanceConflictError extends PermanentError {
  constructor(id: string) {
    super(
      'conflict',
      `instance "${id}" was changed by another request at the same time; nothing was changed by this one. ` +
        'Read it again and repeat the request if it should still apply',
    );
    this.name = 'InstanceConflictError';
  }
}
