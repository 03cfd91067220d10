// liqlab liquidation map of one snapshot: twin of liqlab.engine.liqmap.liqmap_arrays (same sums in the
// same order, float64). capL / capS: unweighted layers (Float64Array K*B, [k * B + b], USD, summed over
// the enabled venues); weights (K); prices (B, USD); ref: the snapshot's close (USD); bands: half-widths
// in % of ref. Returns per-leverage weighted USD (long, short: Float64Array K*B), the cumulative long
// curve from ref downward and short curve upward (Float64Array B, NaN on the other side of ref), and the
// long + short notional in bins with distance d = 100 (price / ref - 1) in [-x, 0) (below) and (0, x] (above).
var liqlab_liqmap = (function () {
  "use strict";

  function compute(capL, capS, weights, K, B, prices, ref, bands) {
    var L = new Float64Array(K * B), S = new Float64Array(K * B), tl = new Float64Array(B), ts = new Float64Array(B);
    for (var k = 0; k < K; k++) {
      var w = weights[k], o = k * B;
      for (var b = 0; b < B; b++) { L[o + b] = w * capL[o + b]; S[o + b] = w * capS[o + b]; }
    }
    for (var b = 0; b < B; b++) {                // sum over layers in k order (numpy's axis-0 sum)
      var a = 0.0, c = 0.0;
      for (var k = 0; k < K; k++) { a += L[k * B + b]; c += S[k * B + b]; }
      tl[b] = a; ts[b] = c;
    }
    var cumL = new Float64Array(B).fill(NaN), cumS = new Float64Array(B).fill(NaN), acc = 0.0;
    for (var b = B - 1; b >= 0; b--) if (prices[b] <= ref) { acc += tl[b]; cumL[b] = acc; }
    acc = 0.0;
    for (var b = 0; b < B; b++) if (prices[b] >= ref) { acc += ts[b]; cumS[b] = acc; }
    var below = new Float64Array(bands.length), above = new Float64Array(bands.length);
    for (var i = 0; i < bands.length; i++) {
      var x = bands[i], lo = 0.0, hi = 0.0;
      for (var b = 0; b < B; b++) {
        var d = 100.0 * (prices[b] / ref - 1.0), t = tl[b] + ts[b];
        if (d < 0 && d >= -x) lo += t; else if (d > 0 && d <= x) hi += t;
      }
      below[i] = lo; above[i] = hi;
    }
    return {long: L, short: S, cumL: cumL, cumS: cumS, below: below, above: above};
  }

  return {compute: compute};
})();
