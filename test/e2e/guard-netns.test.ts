import { guardInNetnsSuite, NODE_CLI } from '../support/guard-netns-suite.js';

/** The guard e2e in a network namespace (see the suite), with `node dist/cli/main.js`. */
guardInNetnsSuite('the guard in a network namespace', () => NODE_CLI);
