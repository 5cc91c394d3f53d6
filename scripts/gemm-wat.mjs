// The WebAssembly text of the CPU backend's SIMD GEMM (src/cpu/wasm/gemm.ts loads its binary), generated
// because its register blocks are unrolled: Y[m·N + n] += Σ_k A[m·K + k]·W[k·N + n] in float64, with the
// exact operation order of the JavaScript gemmAcc it replaces (src/cpu/net/fast.ts): per element, blocks
// of four k summed left to right as a0·x0 + a1·x1 + a2·x2 + a3·x3 and added to Y, then the K mod 4 tail
// one k at a time. A block whose a values are all zero adds zero and is skipped (as the JS does), so the
// two give the same bits. Only the loop order changes: rows in pairs, columns in blocks of 8 (four f64x2
// accumulators per row held in registers over the whole k loop), then blocks of 2, then one scalar column.
//
// `node scripts/gemm-wat.mjs` prints the text; scripts/build-wasm.mjs assembles it with wabt.

const F = 8; // bytes per float64
/** f64x2 vectors per row in the main column block (8 columns): 2 × 4 accumulators; 1, 2 and 3 measured slower. */
const MAIN_VECS = 4;

/** The k loop and Y update for one block of `rows` rows (1 or 2) × `vecs` f64x2 vectors, or one scalar
 * column (vecs = 0). Locals: $yp (Y block), $ap (A row), $wp (W at k = 0, column n), $K, $rowY/$rowA
 * (byte strides of Y and A rows), $rowW (byte stride of W rows). */
function block(rows, vecs) {
  const scalar = vecs === 0;
  const lanes = scalar ? 1 : vecs;
  const T = scalar ? 'f64' : 'f64x2';
  const load = (addr, off) => scalar ? `(f64.load offset=${off} ${addr})` : `(v128.load offset=${off} ${addr})`;
  const store = (addr, off, v) => scalar ? `(f64.store offset=${off} ${addr} ${v})` : `(v128.store offset=${off} ${addr} ${v})`;
  const splat = (v) => scalar ? v : `(f64x2.splat ${v})`;
  const acc = (r, j) => `$acc${r}_${j}`;
  const rowOff = (r) => r === 0 ? '' : '(local.get $rowY)';
  const yAddr = (r) => r === 0 ? '(local.get $yp)' : `(i32.add (local.get $yp) ${rowOff(r)})`;
  const aAddr = (r) => r === 0 ? '(local.get $akp)' : '(i32.add (local.get $akp) (local.get $rowA))';
  const lines = [];
  // Load the accumulators from Y.
  for (let r = 0; r < rows; r++) for (let j = 0; j < lanes; j++) lines.push(`(local.set ${acc(r, j)} ${load(yAddr(r), j * 16)})`);
  lines.push('(local.set $k (i32.const 0))', '(local.set $akp (local.get $ap))', '(local.set $wkp (local.get $wp))');
  // Blocks of four k.
  lines.push('(block $kdone (loop $kloop');
  lines.push('  (br_if $kdone (i32.gt_s (i32.add (local.get $k) (i32.const 4)) (local.get $K)))');
  for (let r = 0; r < rows; r++) for (let i = 0; i < 4; i++) lines.push(`  (local.set $s${r}_${i} (f64.load offset=${i * F} ${aAddr(r)}))`);
  const nz = [];
  for (let r = 0; r < rows; r++) for (let i = 0; i < 4; i++) nz.push(`(f64.ne (local.get $s${r}_${i}) (f64.const 0))`);
  const anyNonZero = nz.reduce((a, b) => `(i32.or ${a} ${b})`);
  lines.push(`  (if ${anyNonZero} (then`);
  if (!scalar) for (let r = 0; r < rows; r++) for (let i = 0; i < 4; i++) lines.push(`    (local.set $v${r}_${i} (f64x2.splat (local.get $s${r}_${i})))`);
  const coef = (r, i) => scalar ? `(local.get $s${r}_${i})` : `(local.get $v${r}_${i})`;
  const wRow = (i) => i === 0 ? '(local.get $wkp)' : `(i32.add (local.get $wkp) (local.get $w${i}))`;
  for (let j = 0; j < lanes; j++) {
    for (let i = 0; i < 4; i++) lines.push(`    (local.set $x${i} ${load(wRow(i), j * 16)})`);
    for (let r = 0; r < rows; r++) {
      const terms = [0, 1, 2, 3].map((i) => `(${T}.mul ${coef(r, i)} (local.get $x${i}))`);
      const sum = terms.reduce((a, b) => `(${T}.add ${a} ${b})`);
      lines.push(`    (local.set ${acc(r, j)} (${T}.add (local.get ${acc(r, j)}) ${sum}))`);
    }
  }
  lines.push('  ))');
  lines.push('  (local.set $k (i32.add (local.get $k) (i32.const 4)))');
  lines.push('  (local.set $akp (i32.add (local.get $akp) (i32.const 32)))');
  lines.push('  (local.set $wkp (i32.add (local.get $wkp) (local.get $w4)))');
  lines.push('  (br $kloop)))');
  // The K mod 4 tail, one k at a time (the JS adds a0·x to Y for each).
  lines.push('(block $tdone (loop $tloop');
  lines.push('  (br_if $tdone (i32.ge_s (local.get $k) (local.get $K)))');
  for (let r = 0; r < rows; r++) lines.push(`  (local.set $v${r}_0 ${splat(`(f64.load ${aAddr(r)})`)})`.replace('$v', scalar ? '$t' : '$v'));
  for (let j = 0; j < lanes; j++) {
    lines.push(`  (local.set $x0 ${load('(local.get $wkp)', j * 16)})`);
    for (let r = 0; r < rows; r++) {
      const c = scalar ? `(local.get $t${r}_0)` : `(local.get $v${r}_0)`;
      lines.push(`  (local.set ${acc(r, j)} (${T}.add (local.get ${acc(r, j)}) (${T}.mul ${c} (local.get $x0))))`);
    }
  }
  lines.push('  (local.set $k (i32.add (local.get $k) (i32.const 1)))');
  lines.push('  (local.set $akp (i32.add (local.get $akp) (i32.const 8)))');
  lines.push('  (local.set $wkp (i32.add (local.get $wkp) (local.get $rowW)))');
  lines.push('  (br $tloop)))');
  for (let r = 0; r < rows; r++) for (let j = 0; j < lanes; j++) lines.push(store(yAddr(r), j * 16, `(local.get ${acc(r, j)})`));
  return lines;
}

/** The column loop for `rows` rows: blocks of 8, then of 2, then a last odd column. */
function columns(rows) {
  const step = (vecs, width) => [
    `(block $cdone${width} (loop $cloop${width}`,
    `  (br_if $cdone${width} (i32.gt_s (i32.add (local.get $n) (i32.const ${width})) (local.get $N)))`,
    ...block(rows, vecs).map((l) => '  ' + l),
    `  (local.set $n (i32.add (local.get $n) (i32.const ${width})))`,
    `  (local.set $yp (i32.add (local.get $yp) (i32.const ${width * F})))`,
    `  (local.set $wp (i32.add (local.get $wp) (i32.const ${width * F})))`,
    `  (br $cloop${width})))`,
  ];
  return [
    '(local.set $n (i32.const 0))',
    '(local.set $yp (local.get $yRow))',
    '(local.set $wp (local.get $w))',
    ...step(MAIN_VECS, 2 * MAIN_VECS),
    ...step(1, 2),
    '(if (i32.lt_s (local.get $n) (local.get $N)) (then',
    ...block(rows, 0).map((l) => '  ' + l),
    '))',
  ];
}

export function gemmWat() {
  const locals = [
    '$m', '$n', '$k', '$yRow', '$yp', '$ap', '$akp', '$wp', '$wkp', '$rowY', '$rowA', '$rowW', '$w1', '$w2', '$w3', '$w4',
  ].map((l) => `(local ${l} i32)`);
  const f64s = [];
  for (let r = 0; r < 2; r++) for (let i = 0; i < 4; i++) f64s.push(`$s${r}_${i}`);
  for (let r = 0; r < 2; r++) f64s.push(`$t${r}_0`);
  // Scalar accumulators reuse the names $acc{r}_0 only as v128 locals; the scalar column has its own.
  const v128s = [];
  for (let r = 0; r < 2; r++) for (let i = 0; i < 4; i++) v128s.push(`$v${r}_${i}`);
  for (let i = 0; i < 4; i++) v128s.push(`$x${i}`);
  for (let r = 0; r < 2; r++) for (let j = 0; j < 4; j++) v128s.push(`$acc${r}_${j}`);
  // The scalar column's accumulators and W values are f64: a second set of names, mapped in by
  // renaming within the scalar blocks.
  const scalarNames = (lines) => lines.map((l) => l.replace(/\$acc(\d)_0/g, '$$sacc$1').replace(/\$x(\d)/g, '$$sx$1'));
  const fixScalar = (lines) => {
    // columns() emits the scalar block last, after the line '(if (i32.lt_s (local.get $n) (local.get $N)) (then'.
    const at = lines.findIndex((l) => l.startsWith('(if (i32.lt_s (local.get $n)'));
    return [...lines.slice(0, at), ...scalarNames(lines.slice(at))];
  };
  f64s.push('$sacc0', '$sacc1', '$sx0', '$sx1', '$sx2', '$sx3');
  const body = [
    '(local.set $rowY (i32.shl (local.get $N) (i32.const 3)))',
    '(local.set $rowW (local.get $rowY))',
    '(local.set $rowA (i32.shl (local.get $K) (i32.const 3)))',
    '(local.set $w1 (local.get $rowW))',
    '(local.set $w2 (i32.shl (local.get $rowW) (i32.const 1)))',
    '(local.set $w3 (i32.add (local.get $w2) (local.get $rowW)))',
    '(local.set $w4 (i32.shl (local.get $rowW) (i32.const 2)))',
    '(local.set $m (i32.const 0))',
    '(local.set $yRow (local.get $y))',
    '(local.set $ap (local.get $a))',
    '(block $mdone (loop $mloop',
    '  (br_if $mdone (i32.gt_s (i32.add (local.get $m) (i32.const 2)) (local.get $M)))',
    ...fixScalar(columns(2)).map((l) => '  ' + l),
    '  (local.set $m (i32.add (local.get $m) (i32.const 2)))',
    '  (local.set $yRow (i32.add (local.get $yRow) (i32.shl (local.get $rowY) (i32.const 1))))',
    '  (local.set $ap (i32.add (local.get $ap) (i32.shl (local.get $rowA) (i32.const 1))))',
    '  (br $mloop)))',
    '(if (i32.lt_s (local.get $m) (local.get $M)) (then',
    ...fixScalar(columns(1)).map((l) => '  ' + l),
    '))',
  ];
  return [
    '(module',
    '  (import "env" "memory" (memory 1))',
    '  ;; Y[m·N + n] += Σ_k A[m·K + k]·W[k·N + n]; y, a, w are byte offsets of float64 arrays.',
    '  (func (export "gemm_acc") (param $y i32) (param $a i32) (param $w i32) (param $M i32) (param $K i32) (param $N i32)',
    ...locals.map((l) => '    ' + l),
    ...f64s.map((l) => `    (local ${l} f64)`),
    ...v128s.map((l) => `    (local ${l} v128)`),
    ...body.map((l) => '    ' + l),
    '  )',
    ')',
  ].join('\n') + '\n';
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(gemmWat());
