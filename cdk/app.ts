import { describeError } from '../shared/errors.ts';
import { buildApp } from './build-app.ts';

try {
  buildApp().app.synth();
} catch (error) {
  process.stderr.write(`cldist: cannot synthesize the stack:\n${describeError(error)}\n`);
  process.exit(1);
}
