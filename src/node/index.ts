// 'metagrad/node': helpers that need Node's file system.
export { loadFashionMnist, embeddedSubsetDir, DEBIAN_FASHION_DIR } from './images.js';
export { loadOmniglotEmbedded, loadOmniglotDir, embeddedOmniglotDir, omniglotPngToInk, omniglotDrawer, OMNIGLOT_EMBEDDED_FILE, OMNIGLOT_SETS } from './omniglot.js';
export type { OmniglotSet } from './omniglot.js';
