// liqlab step recursion: a port of liqlab/kernel.py (docs/DESIGN.md "Step recursion") doing the same
// float64 operations in the same order, per venue, per side, per layer k. Per step j, f = d[k] * g[j]
// (d[k]: the layer's decay, liqlab.kernel.layer_decay):
//   1 shift X by shift[j] bins (zero-filled, + = up)      2 X *= f
//   3 clear: long X[b >= lo[j]] = 0, short X[b <= hi[j]] = 0
//   4 highest_leverage: S_k = sequential sum of X_k, W_k = w_k S_k; descending leverage:
//     take = min(rem, W_k), phi = 1 - take / W_k, X_k *= phi, rem -= take
//   5 X[k, b] += v for the fresh entries of step j (CSR order)
//   6 max age A: for each surviving entry of step c = j - A: X[k, p] = max(X[k, p] - v * m_k, 0),
//     m_k = (((1 * f_{k,c+1}) * phi_k[c+1]) * f_{k,c+2}) ...        7 snapshot
// Bins that are exactly zero are skipped (nonzero range [lo, hi) per layer): 0 * f = 0, 0 + 0 = 0,
// so skipping them changes no value. Units: USD notional; steps of `step_hours`; B price bins.
var liqlab_recursion = (function () {
  "use strict";

  // One side of one venue. side: {ptr, k, b, v, clear (Int32Array T), rm (Float64Array T)};
  // isLong: long bins b >= clear[j] are cleared, short bins b <= clear[j]. oiMode 2 = highest_leverage.
  // At output steps j = offset + n * stride, the weighted sum over layers sum_k w_k X_k (float64, k in
  // order) is added into out[n * B + b] (Float64Array To*B) and, if vbuf is given, into vbuf too.
  // phi (Float64Array T*K, [j*K + k]) receives the highest_leverage factors (1 where none).
  // cap (optional) {j, out: Float64Array K*B}: the unweighted layers X_k at step cap.j are added into
  // out[k * B + b] (the liquidation map); with out === null the run stops there (capture only).
  function runSide(T, B, K, side, isLong, g, shift, d, weights, order, oiMode, A, stride, offset, out, vbuf, phi, cap) {
    var X = new Array(K), lo = new Int32Array(K), hi = new Int32Array(K), row = new Float64Array(B);
    for (var k = 0; k < K; k++) { X[k] = new Float64Array(B); lo[k] = B; hi[k] = 0; }
    var ptr = side.ptr, kk = side.k, bb = side.b, vv = side.v, clr = side.clear, rm = side.rm;
    var doHL = oiMode === 2;
    var cs = new Float64Array(T), acc = 0;                 // cumulative shift
    for (var j = 0; j < T; j++) { acc += shift[j]; cs[j] = acc; }
    for (var j = 0; j < T; j++) {
      var s = shift[j], gj = g[j], c = clr[j];
      for (var k = 0; k < K; k++) stepOps(X[k], lo, hi, k, B, s, d[k] * gj, c, isLong);
      for (var k = 0; k < K; k++) phi[j * K + k] = 1.0;
      if (doHL && rm[j] > 0.0) {
        var rem = rm[j];
        var S = new Float64Array(K);
        for (var k = 0; k < K; k++) { var x = X[k], a = 0.0; for (var b = lo[k]; b < hi[k]; b++) a += x[b]; S[k] = a; }
        for (var oi = 0; oi < K; oi++) {
          if (rem <= 0.0) break;
          var k = order[oi], W = weights[k] * S[k];
          if (W <= 0.0) continue;
          var take = rem < W ? rem : W, ph = 1.0 - take / W, x = X[k];
          phi[j * K + k] = ph;
          for (var b = lo[k]; b < hi[k]; b++) x[b] *= ph;
          rem -= take;
        }
      }
      for (var e = ptr[j]; e < ptr[j + 1]; e++) {   // fresh deposits, age 0 at times[j]
        var k = kk[e], b = bb[e];
        X[k][b] += vv[e];
        if (b < lo[k]) lo[k] = b;
        if (b + 1 > hi[k]) hi[k] = b + 1;
      }
      if (A > 0 && j >= A) {                        // the cohort of step j - A leaves, evolved to j
        var cc = j - A;
        if (ptr[cc + 1] > ptr[cc]) {
          var tmin = Infinity, tmax = -Infinity, cmin = Infinity, cmax = -Infinity;
          for (var i = cc + 1; i <= j; i++) {
            var tv = clr[i] - cs[i];
            if (tv < tmin) tmin = tv;
            if (tv > tmax) tmax = tv;
            if (cs[i] < cmin) cmin = cs[i];
            if (cs[i] > cmax) cmax = cs[i];
          }
          for (var e = ptr[cc]; e < ptr[cc + 1]; e++) {
            var q = bb[e] - cs[cc];
            var ok = isLong ? (q < tmin && q >= -cmin) : (q > tmax && q < B - cmax);
            if (!ok) continue;
            var k = kk[e], m = 1.0;
            for (var i = cc + 1; i <= j; i++) { m *= d[k] * g[i]; if (doHL) m *= phi[i * K + k]; }
            var p = q + cs[j], val = X[k][p] - vv[e] * m;
            X[k][p] = val > 0.0 ? val : 0.0;
          }
        }
      }
      if (cap && j === cap.j) {
        for (var k = 0; k < K; k++) { var x = X[k], o = k * B; for (var b = lo[k]; b < hi[k]; b++) cap.out[o + b] += x[b]; }
        if (out === null) return;
      }
      if (out !== null && j >= offset && (j - offset) % stride === 0) {   // snapshot
        var base = ((j - offset) / stride) * B, ua = B, uz = 0;
        for (var k = 0; k < K; k++) { if (lo[k] < ua) ua = lo[k]; if (hi[k] > uz) uz = hi[k]; }
        if (ua < uz) {
          for (var b = ua; b < uz; b++) row[b] = 0.0;
          for (var k = 0; k < K; k++) {
            var x = X[k], w = weights[k];
            if (w === 0.0) continue;
            for (var b = lo[k]; b < hi[k]; b++) row[b] += w * x[b];
          }
          for (var b = ua; b < uz; b++) out[base + b] += row[b];
          if (vbuf) for (var b = ua; b < uz; b++) vbuf[base + b] += row[b];
        }
      }
    }
  }

  // 1-3 of the recursion on one layer, keeping its nonzero range [lo[i], hi[i]).
  function stepOps(x, lo, hi, i, B, s, f, c, isLong) {
    var a = lo[i], z = hi[i];
    if (a >= z) return;
    if (s !== 0) {
      if (s > 0) {
        for (var b = z - 1; b >= a; b--) { var t = b + s; if (t < B) x[t] = x[b]; x[b] = 0.0; }
      } else {
        for (var b = a; b < z; b++) { var t = b + s; if (t >= 0) x[t] = x[b]; x[b] = 0.0; }
      }
      a = Math.max(0, a + s); z = Math.min(B, z + s);
      if (a >= z) { lo[i] = B; hi[i] = 0; return; }
    }
    for (var b = a; b < z; b++) x[b] *= f;
    if (isLong) {
      if (c < z) { for (var b = Math.max(a, c, 0); b < z; b++) x[b] = 0.0; z = Math.max(a, Math.min(z, c)); }
    } else {
      if (c >= a) { var e = Math.min(c, z - 1); for (var b = a; b <= e; b++) x[b] = 0.0; a = Math.min(z, Math.max(a, c + 1)); }
    }
    if (a >= z) { a = B; z = 0; }
    lo[i] = a; hi[i] = z;
  }

  // Both sides of one venue: adds its weighted map into outL/outS (Float64Array(To*B)); returns the
  // venue's snapshot maxima of long + short (Float64Array To) and the highest_leverage factors.
  // cap (optional) {j, L, S: Float64Array K*B}: also adds the unweighted layers at step j into L / S.
  // scratch (optional): a Float64Array(To*B) to reuse for the venue's own map (fewer allocations, less GC).
  function runVenue(vr, T, B, K, d, weights, order, oiMode, A, stride, outL, outS, cap, scratch) {
    var offset = (T - 1) % stride, To = Math.floor((T - 1) / stride) + 1;
    var cl = cap ? {j: cap.j, out: cap.L} : null, cs = cap ? {j: cap.j, out: cap.S} : null;
    var vbuf = scratch && scratch.length === To * B ? scratch.fill(0) : new Float64Array(To * B);
    var r = {max: new Float64Array(To), phiL: new Float64Array(T * K), phiS: new Float64Array(T * K)};
    runSide(T, B, K, vr.long, true, vr.g, vr.shift, d, weights, order, oiMode, A, stride, offset, outL, vbuf, r.phiL, cl);
    runSide(T, B, K, vr.short, false, vr.g, vr.shift, d, weights, order, oiMode, A, stride, offset, outS, vbuf, r.phiS, cs);
    for (var n = 0; n < To; n++) {
      var mx = 0.0, base = n * B;
      for (var b = 0; b < B; b++) if (vbuf[base + b] > mx) mx = vbuf[base + b];
      r.max[n] = mx;
    }
    return r;
  }

  // Per-layer decay (liqlab.kernel.layer_decay): d[k] = 2^(-step_hours / (half_life * (L_k/10)^(-gamma)));
  // gamma = half_life_exponent (0: one half-life for every layer); Infinity gives 1.
  function decay(stepHours, halfLife, leverages, gamma) {
    var K = leverages.length, d = new Float64Array(K);
    for (var k = 0; k < K; k++) {
      var hl = gamma ? halfLife * Math.pow(leverages[k] / 10.0, -gamma) : halfLife;
      d[k] = Math.pow(2.0, -stepHours / hl);
    }
    return d;
  }

  // Weighted notional and mean age (steps) at cell (step j, bin b) of one venue side: every surviving
  // deposit traced back through shifts, clears, decay and removals (for hover and cluster details).
  function trace(vr, isLong, T, B, K, d, weights, phi, A, j, b) {
    var S = isLong ? vr.long : vr.short;
    var tot = 0.0, ageSum = 0.0, c = b, acc = new Float64Array(K);
    for (var k = 0; k < K; k++) acc[k] = 1.0;
    for (var i = j; i >= 0; i--) {
      var age = j - i;
      if (A > 0 && age >= A) break;
      for (var e = S.ptr[i]; e < S.ptr[i + 1]; e++) {
        if (S.b[e] === c) { var k = S.k[e], v = weights[k] * S.v[e] * acc[k]; tot += v; ageSum += v * age; }
      }
      var cl = S.clear[i];
      if (isLong ? c >= cl : c <= cl) break;
      var gi = vr.g[i];
      for (var k = 0; k < K; k++) acc[k] *= (d[k] * gi) * (phi ? phi[i * K + k] : 1.0);
      c -= vr.shift[i];
      if (c < 0 || c >= B) break;
    }
    return {notional: tot, age: tot > 0 ? ageSum / tot : NaN};
  }

  // The unweighted layers of one venue at step j only (both sides; the run stops at j): adds them into
  // capL / capS (Float64Array K*B). Same operations as runVenue up to j.
  function captureVenue(vr, T, B, K, d, weights, order, oiMode, A, j, capL, capS) {
    var phi = new Float64Array(T * K);
    runSide(T, B, K, vr.long, true, vr.g, vr.shift, d, weights, order, oiMode, A, 1, 0, null, null, phi, {j: j, out: capL});
    runSide(T, B, K, vr.short, false, vr.g, vr.shift, d, weights, order, oiMode, A, 1, 0, null, null, phi, {j: j, out: capS});
  }

  return {runSide: runSide, runVenue: runVenue, captureVenue: captureVenue, decay: decay, trace: trace};
})();
