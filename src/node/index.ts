// 'metagrad/node': helpers that need Node's file system.
export { loadFashionMnist, embeddedSubsetDir, DEBIAN_FASHION_DIR } from './images.js';
