// liqlab colour mapping (port of liqlab.plot.colour_levels / rgba_image): a fixed USD scale, so the
// same notional gets the same colour at any price and time. Levels 0..N-1 index the side's palette;
// -1 = transparent (no notional, or below the low cut). Modes: "linear" (v / vmax), "log" (decades between vmax/dyn and
// vmax), "percentile" (rank among the nonzero cells of both sides of the current map).
var liqlab_colour = (function () {
  "use strict";

  // vmin: the low cut (USD): cells below it are transparent (-1) like empty ones.
  function levels(vals, mode, vmax, dyn, qs, N, out, vmin) {
    var n = vals.length, cut = vmin > 0 ? vmin : 0;
    if (mode === "percentile") {
      for (var i = 0; i < n; i++) {
        var v = vals[i];
        if (!(v > 0) || v < cut) { out[i] = -1; continue; }
        var lo = 0, hi = qs.length;            // number of thresholds <= v  (searchsorted right)
        while (lo < hi) { var m = (lo + hi) >> 1; if (qs[m] <= v) lo = m + 1; else hi = m; }
        out[i] = lo;
      }
    } else if (mode === "log") {
      var vmin = vmax / dyn, lmin = Math.log10(vmin), span = Math.log10(vmax) - lmin;
      for (var i = 0; i < n; i++) {
        var v = vals[i];
        if (!(v > 0) || v < cut) { out[i] = -1; continue; }
        var t = (Math.log10(v) - lmin) / span;
        var l = Math.floor(t * N);
        out[i] = l < 0 ? 0 : (l > N - 1 ? N - 1 : l);
      }
    } else {
      for (var i = 0; i < n; i++) {
        var v = vals[i];
        if (!(v > 0) || v < cut) { out[i] = -1; continue; }
        var l = Math.floor((v / vmax) * N);
        out[i] = l < 0 ? 0 : (l > N - 1 ? N - 1 : l);
      }
    }
  }

  // N - 1 thresholds: the value at rank floor(i * n / N) of the sorted nonzero values, i = 1..N-1.
  function quantiles(a, b, N) {
    var n = 0, i;
    for (i = 0; i < a.length; i++) if (a[i] > 0) n++;
    if (b) for (i = 0; i < b.length; i++) if (b[i] > 0) n++;
    var s = new Float32Array(n), p = 0;
    for (i = 0; i < a.length; i++) if (a[i] > 0) s[p++] = a[i];
    if (b) for (i = 0; i < b.length; i++) if (b[i] > 0) s[p++] = b[i];
    s.sort();
    var q = new Float64Array(N - 1);
    for (i = 1; i < N; i++) q[i - 1] = n > 0 ? s[Math.min(n - 1, Math.floor(i * n / N))] : Infinity;
    return q;
  }

  // RGBA (uint32, little-endian ABGR) per cell from the two level arrays.
  // which: "blend" (both), "long", "short". palL/palS: Uint32Array(N) of opaque colours.
  function paint(levL, levS, palL, palS, which, N, out) {
    var n = out.length, useL = which !== "short", useS = which !== "long";
    for (var i = 0; i < n; i++) {
      var a = useL ? levL[i] : -1, b = useS ? levS[i] : -1;
      if (a < 0 && b < 0) { out[i] = 0; continue; }
      if (b < 0) { out[i] = palL[a]; continue; }
      if (a < 0) { out[i] = palS[b]; continue; }
      var ca = palL[a], cb = palS[b], wa = a + 1, wb = b + 1, ws = wa + wb;   // both sides: level-weighted mix
      var r = (((ca & 255) * wa + (cb & 255) * wb) / ws) | 0;
      var g = ((((ca >>> 8) & 255) * wa + ((cb >>> 8) & 255) * wb) / ws) | 0;
      var bl = ((((ca >>> 16) & 255) * wa + ((cb >>> 16) & 255) * wb) / ws) | 0;
      out[i] = ((255 << 24) | (bl << 16) | (g << 8) | r) >>> 0;
    }
  }

  // Colour-bar ticks: positions in [0, 1] and the USD value each stands for.
  function ticks(mode, vmax, dyn, qs, N) {
    var pos = [], val = [];
    if (mode === "log") {
      var lmin = Math.log10(vmax / dyn), lmax = Math.log10(vmax);
      for (var e = Math.ceil(lmin); e <= Math.floor(lmax); e++) { pos.push((e - lmin) / (lmax - lmin)); val.push(Math.pow(10, e)); }
      pos.push(1.0); val.push(vmax);
    } else if (mode === "percentile") {
      var ps = [0.1, 0.25, 0.5, 0.75, 0.9, 0.99];
      for (var i = 0; i < ps.length; i++) { var r = Math.round(ps[i] * N); pos.push(r / N); val.push(qs[r - 1]); }
    } else {
      for (var i = 0; i <= 4; i++) { pos.push(i / 4); val.push(vmax * i / 4); }
    }
    return {pos: pos, val: val};
  }

  function usd(v) {
    if (!isFinite(v)) return "-";
    var a = Math.abs(v);
    if (a >= 1e9) return "$" + (v / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "B";
    if (a >= 1e6) return "$" + (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
    if (a >= 1e3) return "$" + (v / 1e3).toFixed(a >= 1e4 ? 0 : 1) + "k";
    return "$" + v.toFixed(0);
  }

  return {levels: levels, quantiles: quantiles, paint: paint, ticks: ticks, usd: usd};
})();
