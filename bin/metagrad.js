#!/usr/bin/env node
// The `metagrad` command: the bundle built by `npm run build` (scripts/build.mjs) from src/cli.ts.
import '../dist/cli.js';
