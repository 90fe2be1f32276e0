#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

// `swarmkeeper get | head` closes stdout early; that is the reader's choice, not a failure.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

process.exitCode = await main(process.argv);
