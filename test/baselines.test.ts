// The training-free baselines of `metagrad eval`, on batches whose answers are worked out by hand.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { nearestNeighbourAccuracy } from '../src/baselines.js';

test('1-nearest-neighbour: each query takes the label of its task\'s closest support row (ties: the first)', () => {
  const batch = {
    tasks: 2, supportShots: 2, queryShots: 3,
    // task 0: supports (0,0)→0, (10,10)→1; task 1: (0,0)→1, (5,0)→0
    supportX: Float32Array.from([0, 0, 10, 10, 0, 0, 5, 0]), supportY: Float32Array.from([0, 1, 1, 0]),
    // task 0: (1,1) is 0 ✓, (9,9) is 1 ✓, (4,4) is labelled 1 but nearer (0,0) ✗;
    // task 1: (0,1) is 1 ✓, (5,1) is 0 ✓, (2.5,0) ties, takes the first support's 1 but is labelled 0 ✗
    queryX: Float32Array.from([1, 1, 9, 9, 4, 4, 0, 1, 5, 1, 2.5, 0]), queryY: Float32Array.from([0, 1, 1, 1, 0, 0]),
  };
  const r = nearestNeighbourAccuracy(batch);
  assert.equal(Array.from(r.taskAccuracy), [2 / 3, 2 / 3].map(Math.fround));
  assert.ok(Math.abs(r.accuracy.mean - 2 / 3) < 1e-6);
});

test.run();
