import { PermanentError } from '../errors.ts';
import { formatValidationIssues, type ValidationIssue } from './ignition/issues.ts';
import { instanceIdPattern } from './types.ts';

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

/**
 * A batch of record writes refused whole because another write changed some of its instances between the
 * read and the write; `positions` are the failed entries' places in the batch (from 0), `ids` their ids.
 */
export class InstanceBatchConflictError extends PermanentError {
  readonly positions: number[];
  readonly ids: string[];
  constructor(positions: number[], ids: string[]) {
    super(
      'conflict',
      `instance${ids.length === 1 ? '' : 's'} ${ids.map((id) => `"${id}"`).join(', ')} ` +
        `${ids.length === 1 ? 'was' : 'were'} changed by another request at the same time; nothing of this batch was written`,
    );
    this.name = 'InstanceBatchConflictError';
    this.positions = positions;
    this.ids = ids;
  }
}

/** Admin input that cannot be stored as given; `issues` name each bad field by JSON path. */
export class InvalidInstanceConfigError extends PermanentError {
  readonly issues: ValidationIssue[];
  constructor(issues: ValidationIssue[]) {
    super('invalid-instance-config', formatValidationIssues(issues));
    this.name = 'InvalidInstanceConfigError';
    this.issues = issues;
  }
}

/** Admin routes only: instance routes never say whether an id exists. */
export class InstanceNotFoundError extends PermanentError {
  constructor(id: string) {
    super('not-found', `no instance "${id}"`);
    this.name = 'InstanceNotFoundError';
  }
}

/** The PUT names an address another instance holds; `holder` is that instance. */
export class AddressInUseError extends PermanentError {
  readonly address: string;
  readonly holder: string;
  constructor(address: string, holder: string) {
    super(
      'address-in-use',
      `address ${address} belongs to instance "${holder}"; remove it there first (or delete that instance)`,
    );
    this.name = 'AddressInUseError';
    this.address = address;
    this.holder = holder;
  }
}

/** Ids become DynamoDB keys and store keys; checking once here keeps both safe. */
export function assertInstanceId(id: string): void {
  if (!instanceIdPattern.test(id)) {
    throw new InvalidInstanceConfigError([
      {
        path: '$.id',
        message: `expected 1 to 128 letters, digits, ".", "_" or "-" (starting with a letter or digit)`,
      },
    ]);
  }
}

export function renderZodPath(path: readonly PropertyKey[]): string {
  return `$${path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}`;
}
