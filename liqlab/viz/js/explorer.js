// liqlab static explorer: the glue between Bokeh models and the recursion / colour code.
// Every CustomJS callback runs `liqlab_explorer.handle(ctx, event)`. State lives on the `heatmap`
// data source's JS object and is rebuilt whenever the `replay` or `grid` source's data object has
// been replaced (e.g. from Python through jupyter_bokeh): nothing here assumes a fixed grid.
// Layouts: the `heatmap` source holds (B, To) arrays (rows = price bins, columns = snapshots).
var liqlab_explorer = (function () {
  "use strict";
  var R = liqlab_recursion, C = liqlab_colour, LM = liqlab_liqmap;
  var MODES = ["proportional", "ignore", "highest_leverage"];

  function g1(src, name) { var c = src.data[name]; return c == null ? null : c[0]; }

  function init(ctx) {
    var G = ctx.grid, RP = ctx.replay;
    var st = {replayData: RP.data, gridData: G.data};
    st.T = g1(G, "n_steps"); st.B = g1(G, "n_bins"); st.K = g1(G, "n_lev");
    st.stride = g1(G, "stride"); st.offset = (st.T - 1) % st.stride; st.To = Math.floor((st.T - 1) / st.stride) + 1;
    st.stepHours = g1(G, "step_hours");
    st.times = g1(G, "times"); st.prices = g1(G, "prices"); st.edges = g1(G, "edges"); st.close = g1(G, "close");
    st.leverages = g1(G, "leverages");
    st.gamma = g1(G, "half_life_exponent") || 0;   // per-layer half-lives (liqlab.kernel.layer_decay)
    st.oiMode = Math.max(0, MODES.indexOf(g1(G, "oi_decrease")));   // 2 = highest_leverage
    st.maxAge = g1(G, "max_age_steps") | 0;
    st.N = g1(G, "n_colours"); st.dyn = g1(G, "log_range");
    st.palL = new Uint32Array(g1(G, "palette_long")); st.palS = new Uint32Array(g1(G, "palette_short"));
    st.thr = g1(G, "agreement_threshold"); st.win = g1(G, "agreement_window_bins") | 0;
    st.order = []; for (var k = 0; k < st.K; k++) st.order.push(k);
    st.order.sort(function (a, b) { return st.leverages[b] - st.leverages[a]; });   // descending leverage
    var D = RP.data; st.venues = [];
    for (var i = 0; i < D.venue.length; i++) {
      st.venues.push({name: D.venue[i], vr: {
        long: {ptr: D.long_ptr[i], k: D.long_k[i], b: D.long_b[i], v: D.long_v[i], clear: D.lo[i], rm: D.rm_long[i]},
        short: {ptr: D.short_ptr[i], k: D.short_k[i], b: D.short_b[i], v: D.short_v[i], clear: D.hi[i], rm: D.rm_short[i]},
        g: D.g[i], shift: D.shift[i]}, res: null});
    }
    st.outL = new Float64Array(st.To * st.B); st.outS = new Float64Array(st.To * st.B);
    st.levL = new Int16Array(st.To * st.B); st.levS = new Int16Array(st.To * st.B);
    st.vbuf = new Float64Array(st.To * st.B);   // scratch of runVenue
    st.capL = new Float64Array(st.K * st.B); st.capS = new Float64Array(st.K * st.B); st.capJ = -1;   // liquidation map
    st.bands = g1(G, "bands_pct") || [1, 2, 5, 10]; st.pullPct = g1(G, "pull_pct") || 5;
    st.p = null;
    ctx.heatmap.__liqlab = st;
    return st;
  }

  function state(ctx) {
    var st = ctx.heatmap.__liqlab;
    if (!st || st.replayData !== ctx.replay.data || st.gridData !== ctx.grid.data) st = init(ctx);
    return st;
  }

  function params(ctx, st) {
    var hl = ctx.half_life.value, raw = [], sum = 0.0;
    for (var k = 0; k < ctx.levs.length; k++) { var x = Math.max(0, ctx.levs[k].value); raw.push(x); sum += x; }
    var w = new Float64Array(raw.length);
    for (var k = 0; k < raw.length; k++) w[k] = sum > 0 ? raw[k] / sum : 1.0 / raw.length;
    var byName = {}, on = [];                 // toggles are matched to replay rows by name (venue_<name>)
    for (var i = 0; i < ctx.venue_toggles.length; i++) byName[ctx.venue_toggles[i].name] = !!ctx.venue_toggles[i].active;
    for (var i = 0; i < st.venues.length; i++) { var a = byName["venue_" + st.venues[i].name]; on.push(a === undefined ? true : a); }
    return {
      halfLife: hl > 0 ? hl : Infinity, weights: w, on: on,
      mapping: ctx.mapping.value, layers: ctx.layers.labels[ctx.layers.active] || "blend",
      vmax: Math.pow(10, ctx.scale.value), time: Math.max(0, Math.min(st.To - 1, ctx.time.value | 0)),
      vmin: ctx.low_cut ? Math.pow(10, ctx.low_cut.value) : 0,
    };
  }

  function sameArr(a, b) { if (a.length !== b.length) return false; for (var i = 0; i < a.length; i++) if (a[i] !== b[i]) return false; return true; }

  // Re-run the recursion for the enabled venues and write long/short (float32, (B, To)) into `heatmap`;
  // the unweighted layers at the shown snapshot's step are captured on the way (the liquidation map).
  // dry: only the recursion (the warm-up): the page's sources and the captured layers are left alone.
  function recompute(ctx, st, p, dry) {
    var d = R.decay(st.stepHours, p.halfLife, st.leverages, st.gamma), T = st.T, B = st.B, K = st.K, To = st.To;
    st.outL.fill(0); st.outS.fill(0); st.capL.fill(0); st.capS.fill(0);
    var cap = {j: st.offset + p.time * st.stride, L: st.capL, S: st.capS};
    for (var i = 0; i < st.venues.length; i++) {
      var v = st.venues[i];
      v.res = p.on[i] ? R.runVenue(v.vr, T, B, K, d, p.weights, st.order, st.oiMode, st.maxAge, st.stride, st.outL, st.outS, cap, st.vbuf) : null;
    }
    st.capJ = dry ? -1 : cap.j;
    if (dry) return;
    st.d = d;
    var L = ctx.heatmap.data.long[0], S = ctx.heatmap.data.short[0], oL = st.outL, oS = st.outS;
    for (var j = 0; j < To; j++) {
      var base = j * B;
      for (var b = 0; b < B; b++) { L[b * To + j] = oL[base + b]; S[b * To + j] = oS[base + b]; }
    }
  }

  function recolour(ctx, st, p) {
    var H = ctx.heatmap.data, L = H.long[0], S = H.short[0], N = st.N;
    st.qs = p.mapping === "percentile" ? C.quantiles(L, S, N) : null;
    C.levels(L, p.mapping, p.vmax, st.dyn, st.qs, N, st.levL, p.vmin);
    C.levels(S, p.mapping, p.vmax, st.dyn, st.qs, N, st.levS, p.vmin);
    var img = H.image[0], img2 = H.image2[0];
    if (p.layers === "side by side" && img2.length !== img.length) {
      // the page ships a 1x1 placeholder for the second panel: allocate it (same NDArray type and shape)
      img2 = new img.constructor(new Uint32Array(img.length), img.shape);
      H.image2 = [img2];
    }
    if (p.layers === "side by side") {
      C.paint(st.levL, st.levS, st.palL, st.palS, "long", N, img);
      C.paint(st.levL, st.levS, st.palL, st.palS, "short", N, img2);
    } else {
      C.paint(st.levL, st.levS, st.palL, st.palS, p.layers, N, img);
    }
    if (ctx.fig2) ctx.fig2.visible = p.layers === "side by side";
    var tk = C.ticks(p.mapping, p.vmax, st.dyn, st.qs, N), old = ctx.heatmap.__liqlab_ticks;
    ctx.heatmap.__liqlab_ticks = tk;
    if (old && sameArr(old.pos, tk.pos) && sameArr(old.val, tk.val)) return;   // same ticks: no colour-bar repaint
    for (var c = 0; c < ctx.cbars.length; c++) {
      ctx.cbars[c].ticker.ticks = tk.pos.slice();
      ctx.cbars[c].change.emit();
    }
  }

  function usdFmt(v) { return C.usd(v); }

  // Profile and top clusters at snapshot index p.time.
  function panel(ctx, st, p) {
    var H = ctx.heatmap.data, L = H.long[0], S = H.short[0], To = st.To, B = st.B, ti = p.time;
    var pl = new Float64Array(B), ps = new Float64Array(B);
    for (var b = 0; b < B; b++) { pl[b] = L[b * To + ti]; ps[b] = S[b * To + ti]; }
    var pd = ctx.profile.data, nd = {};
    for (var key in pd) nd[key] = pd[key];
    nd.long = pl; nd.short = ps;
    ctx.profile.data = nd;
    var cl = clusters(st, pl, ps, st.close[ti], 10);
    var rows = {price: [], side: [], notional: [], distance_pct: [], age_hours: [], venues: []};
    for (var i = 0; i < cl.length; i++) {
      var c = cl[i], info = cellInfo(ctx, st, p, ti, c.b, c.side);
      rows.price.push(st.prices[c.b]); rows.side.push(c.side); rows.notional.push(c.v);
      rows.distance_pct.push(100.0 * (st.prices[c.b] / st.close[ti] - 1.0));
      rows.age_hours.push(info.age); rows.venues.push(agreeText(info.names, st.thr));
    }
    ctx.clusters.data = rows;
    // the table's grid redraws on its view's change only; with an unchanged row count nothing else tells it
    if (ctx.table) ctx.table.view.change.emit();
    if (ctx.tspan) ctx.tspan.location = st.times[ti];
    if (ctx.pspan) ctx.pspan.location = st.close[ti];
    if (ctx.ptitle) ctx.ptitle.text = "profile " + fmtTime(st.times[ti]);
    if (ctx.liqmap) liqmapPanel(ctx, st, p, ti);
  }

  // The venue cell of the clusters table (twin of liqlab.viz.state.agree_text).
  function agreeText(names, thr) {
    if (names.length) return names.length + " (" + names.join(", ") + ")";
    return "0 (no venue \u2265 " + (+(100 * thr).toPrecision(6)) + "% of its own peak)";
  }

  // The liquidation map of snapshot ti (twin of liqlab.engine.liqmap.liquidation_map): the layers at its
  // step, re-run up to that step when the snapshot moved since the last recursion.
  function liqmapPanel(ctx, st, p, ti) {
    var j = st.offset + ti * st.stride, K = st.K, B = st.B;
    if (st.capJ !== j) {
      st.capL.fill(0); st.capS.fill(0);
      for (var i = 0; i < st.venues.length; i++) {
        if (p.on[i]) R.captureVenue(st.venues[i].vr, st.T, B, K, st.d, p.weights, st.order, st.oiMode, st.maxAge, j, st.capL, st.capS);
      }
      st.capJ = j;
    }
    var ref = st.close[ti], m = LM.compute(st.capL, st.capS, p.weights, K, B, st.prices, ref, st.bands);
    var od = ctx.liqmap.data, nd = {price: od.price, width: od.width, cum_long: m.cumL, cum_short: m.cumS};
    for (var k = 0; k < K; k++) {
      var col = new Float64Array(B), o = k * B;
      for (var b = 0; b < B; b++) col[b] = m.long[o + b] + m.short[o + b];
      nd["k" + k] = col;
    }
    ctx.liqmap.data = nd;
    ctx.liqmap_bands.data = {pct: Float64Array.from(st.bands), below: m.below, above: m.above};
    if (ctx.liqmap_text) ctx.liqmap_text.text = bandsText(st.bands, m.below, m.above);   // canvas labels: no page layout
    if (ctx.pull) ctx.pull.text = pullText(st.bands, m.below, m.above, st.pullPct);
    if (ctx.liqmap_range) {                        // keep the zoom, centred on the snapshot's close
      var xr = ctx.liqmap_range, half = (xr.end - xr.start) / 2;
      if (Math.abs((xr.start + xr.end) / 2 - ref) > 1e-9 * ref) xr.setv({start: ref - half, end: ref + half});
    }
    if (ctx.liqmap_span) ctx.liqmap_span.location = ref;
  }

  // Twins of liqlab.viz.state.bands_text / pull_text.
  function bandsText(pcts, below, above) {
    var parts = [];
    for (var i = 0; i < pcts.length; i++) parts.push("\u00b1" + pcts[i] + "%: " + C.usd(below[i]) + " below \u00b7 " + C.usd(above[i]) + " above");
    return parts.join("\n");
  }

  function pullText(pcts, below, above, pct) {
    var i = Array.prototype.indexOf.call(pcts, pct), lo = below[i], hi = above[i];
    var ratio = lo > 0 ? (hi / lo).toFixed(2) : "-";
    return "pull \u00b1" + pct + "%: " + C.usd(hi) + " above\nvs " + C.usd(lo) + " below (ratio " + ratio + ")";
  }

  // Top clusters (twin of liqlab.heatmap.Heatmap.top_clusters): local maxima of each side's profile
  // (> 0, >= left neighbour, > right neighbour), largest first (stable: long before short, low bin first).
  function clusters(st, pl, ps, close, n) {
    var cand = [], B = pl.length, sides = [["long", pl], ["short", ps]];
    for (var s = 0; s < 2; s++) {
      var a = sides[s][1];
      for (var b = 0; b < B; b++) {
        var v = a[b];
        if (v > 0 && (b === 0 || v >= a[b - 1]) && (b === B - 1 || v > a[b + 1])) cand.push({b: b, v: v, side: sides[s][0], i: cand.length});
      }
    }
    cand.sort(function (x, y) { return (y.v - x.v) || (x.i - y.i); });
    return cand.slice(0, n);
  }

  // Hover / cluster details for one cell (twin of Heatmap._mean_age and the agreement rule): mean age
  // (hours) of the cell's notional on `side`, and the venues whose own map (long + short) has a
  // cluster within +-window bins: > 0 and >= threshold x that venue's snapshot maximum.
  function cellInfo(ctx, st, p, ti, b, side) {
    var isLong = side === "long", j = st.offset + ti * st.stride, tot = 0.0, ageSum = 0.0, names = [];
    for (var i = 0; i < st.venues.length; i++) {
      var v = st.venues[i];
      if (!v.res) continue;
      var t = R.trace(v.vr, isLong, st.T, st.B, st.K, st.d, p.weights, isLong ? v.res.phiL : v.res.phiS, st.maxAge, j, b);
      if (t.notional > 0) { tot += t.notional; ageSum += t.notional * t.age; }
      var mx = v.res.max[ti], hit = false;
      for (var bb = Math.max(0, b - st.win); bb <= Math.min(st.B - 1, b + st.win) && !hit; bb++) {
        var m = R.trace(v.vr, true, st.T, st.B, st.K, st.d, p.weights, v.res.phiL, st.maxAge, j, bb).notional +
                R.trace(v.vr, false, st.T, st.B, st.K, st.d, p.weights, v.res.phiS, st.maxAge, j, bb).notional;
        if (m > 0 && m >= st.thr * mx) hit = true;
      }
      if (hit) names.push(v.name);
    }
    return {age: tot > 0 ? (ageSum / tot) * st.stepHours : NaN, agree: names.length, names: names};
  }

  function fmtTime(ms) { return new Date(ms).toISOString().slice(0, 16).replace("T", " ") + " UTC"; }

  function titleText(ctx, st, p) {
    var names = [];
    for (var i = 0; i < st.venues.length; i++) if (p.on[i]) names.push(st.venues[i].name);
    var parts = [], lev = st.leverages;
    for (var k = 0; k < lev.length; k++) if (p.weights[k] > 0.005) parts.push(lev[k] + "x " + Math.round(100 * p.weights[k]) + "%");
    var hl = isFinite(p.halfLife) ? p.halfLife + " h" : "no decay";
    var syn = g1(ctx.grid, "synthetic") ? "<b style='color:#d9534f'>SYNTHETIC</b> · " : "";
    return "<div style='font-size:14px'>" + syn + "<b>" + g1(ctx.grid, "symbol") + "</b> liquidation heatmap · " +
      (names.length ? names.join(" + ") : "no venue") + "<br><span style='font-size:12px;color:#555'>half-life " + hl +
      " · leverage " + parts.join(", ") + " · " + g1(ctx.grid, "param_text") + "</span></div>";
  }

  // Ensure the recursion state matches the current parameters (used by the hover formatters too).
  function ensure(ctx) {
    var st = state(ctx), p = params(ctx, st), q = st.p;
    if (!q || st.res_stale || q.halfLife !== p.halfLife || !sameArr(q.weights, p.weights) || !sameArr(q.on, p.on)) {
      recompute(ctx, st, p); st.res_stale = false;
      st.p = p; return {st: st, p: p, changed: true};
    }
    st.p = p;
    return {st: st, p: p, changed: false};
  }

  function now() { return (typeof performance !== "undefined") ? performance.now() : Date.now(); }

  // event: "params" (half-life, leverage, venue), "colour", "time", "preset" (leverage preset select),
  // "external" (Python replaced the data), "warm" (document ready: build the state, warm the JIT and
  // Bokeh's image path once, so the first slider move costs what later ones do). Events of one task
  // (e.g. the 8 slider changes of a preset) are coalesced into one recomputation (a microtask). The map
  // is recomputed and emitted first; the side panel (profile, clusters, liquidation map) and the title
  // follow after the map's frame has been painted.
  function handle(ctx, event) {
    if (event === "external") {
      // Python has replaced the sources (liqlab.plot.update_explorer): it sent a consistent map, image,
      // profile and clusters, so only drop the JS state; it is rebuilt on the next control event.
      ctx.heatmap.__liqlab = null;
      ctx.heatmap.__liqlab_ticks = null;
      return;
    }
    if (event === "preset") { applyPreset(ctx); return; }   // the slider changes it makes come back as "params"
    if (event === "warm") { warm(ctx, 8); return; }
    ctx.heatmap.__liqlab_moved = true;                     // a real control event: the warm-up stops
    var q = ctx.heatmap.__liqlab_queue;
    if (!q) q = ctx.heatmap.__liqlab_queue = {events: {}, scheduled: false};
    q.events[event] = true;
    if (q.scheduled) return;
    q.scheduled = true;
    var go = function () { q.scheduled = false; var ev = q.events; q.events = {}; run(ctx, ev); };
    if (typeof queueMicrotask === "function") queueMicrotask(go);
    else if (typeof setTimeout === "function") setTimeout(go, 0); else go();
  }

  function applyPreset(ctx) {
    var G = ctx.grid, names = g1(G, "preset_names"), flat = g1(G, "preset_weights"), K = ctx.levs.length;
    var i = names ? names.indexOf(ctx.preset.value) : -1;
    if (i < 0) return;
    for (var k = 0; k < K; k++) ctx.levs[k].value = flat[i * K + k];
  }

  // Warm-up: n recursions (V8 optimises the loops after a few runs) with half-lives around the page's
  // own, one task each so the page stays responsive, then one full update with the page's parameters
  // (map, image, side panel): the map shown is the page's.
  function warm(ctx, n) {
    if (ctx.heatmap.__liqlab_moved) { if (typeof window !== "undefined") window.__liqlab_warm = true; return; }
    if (n <= 0) { run(ctx, {params: true, warm: true}); return; }
    var st = state(ctx), p = params(ctx, st);
    p.halfLife = isFinite(p.halfLife) ? p.halfLife * [0.5, 2, 0.75, 1.5][n % 4] : 24 * (1 + n % 4);
    recompute(ctx, st, p, true); st.p = null;
    setTimeout(function () { warm(ctx, n - 1); }, 30);   // time for the optimising compiler between runs
  }

  // fn after the next frame has been painted (the frame's rAF callbacks, then a task after it).
  function afterPaint(fn) {
    if (typeof requestAnimationFrame === "function") requestAnimationFrame(function () { setTimeout(fn, 0); });
    else fn();
  }

  function signal(perf, warm) {
    if (typeof window === "undefined") return;   // for tests and benchmarks: timings and a completion counter
    window.__liqlab_last_ms = perf.recursion + perf.colour;
    window.__liqlab_perf = perf;
    window.__liqlab_calls = (window.__liqlab_calls || 0) + 1;
    if (warm) { window.__liqlab_warm = true; return; }   // the completion hook is for control events
    var hook = window.__liqlab_on_done;
    if (typeof hook === "function") { window.__liqlab_on_done = null; hook(); }
  }

  function run(ctx, ev) {
    var t0 = now();
    var r = ensure(ctx), st = r.st, p = r.p, t1 = now();
    var mapChanged = r.changed || ev.colour || ev.params;
    if (mapChanged) { recolour(ctx, st, p); ctx.heatmap.change.emit(); }
    var perf = {recursion: t1 - t0, colour: now() - t1, start: t0};
    var side = function () {
      var t3 = now();
      if (r.changed || ev.time || ev.params) panel(ctx, st, p);
      if (ctx.title && (r.changed || ev.params)) {
        var txt = titleText(ctx, st, p);
        if (ctx.title.text !== txt) ctx.title.text = txt;
      }
      perf.panel = now() - t3;
    };
    if (!mapChanged) side();                 // a snapshot move: the side panel is what changes
    afterPaint(function () {
      perf.painted_at = now();               // the frame showing the change has been painted
      if (!mapChanged) { signal(perf, ev.warm); return; }
      side();
      afterPaint(function () { perf.side_painted_at = now(); signal(perf, ev.warm); });
    });
  }

  // Hover formatters: which = "time" | "price" | "age" | "venues".
  function hover(ctx, which, sv) {
    var ii = sv.image_index; if (!ii) return "";
    var st = state(ctx), ti = ii.i, b = ii.j;
    if (ti < 0 || ti >= st.To || b < 0 || b >= st.B) return "";
    if (which === "time") return fmtTime(st.times[ti]);
    if (which === "price") return st.prices[b].toFixed(2) + "  (" + (100 * (st.prices[b] / st.close[ti] - 1)).toFixed(2) + "% from close)";
    var r = ensure(ctx);
    if (r.changed) { recolour(ctx, r.st, r.p); ctx.heatmap.change.emit(); }
    var H = ctx.heatmap.data, To = st.To;
    // the side shown under the pointer: the short panel, the selected layer, else the larger side
    var lay = ctx.layers.labels[ctx.layers.active];
    var side = sv.name === "heatmap_image_short" ? "short" : (lay === "long" || lay === "side by side") ? "long" :
      lay === "short" ? "short" : (H.long[0][b * To + ti] >= H.short[0][b * To + ti] ? "long" : "short");
    var info = cellInfo(ctx, r.st, r.p, ti, b, side);
    if (which === "age") return isFinite(info.age) ? info.age.toFixed(1) + " h (" + side + ")" : "-";
    return agreeText(info.names, st.thr);
  }

  return {handle: handle, hover: hover, ensure: ensure, state: state, clusters: clusters, cellInfo: cellInfo};
})();
