// The attention page of pcattn.viz.html: decodes the embedded sparse maps and computes in
// the browser what pcattn/viz/quantities.py and colors.py compute (map, received, rollout,
// relative to uniform or absolute, and their colour scale), so a click on a point makes it
// the query. window.pcattn exposes the state and the computations.
"use strict";
(function () {
  const D = PCATTN_DATA;
  const N = D.n;
  const MIN_SPAN = Math.log2(1.05); // colors.MIN_SPAN
  const FADED_SHOWN = 20000; // points without a value drawn at most (a large cloud's backdrop)
  const RATIO_TICKS = [1 / 16, 1 / 8, 1 / 4, 1 / 2, 2 / 3, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 2, 4, 8,
                       16]; // colors.RATIO_TICKS
  const PART_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                        "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78",
                        "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
                        "#dbdb8d", "#9edae5"]; // tab20's first colours, as in the PNG legend

  function bytes(b64) {
    const s = atob(b64), out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out.buffer;
  }
  function half(b64) { // float16 -> Float32Array
    const h = new Uint16Array(bytes(b64)), out = new Float32Array(h.length);
    for (let i = 0; i < h.length; i++) {
      const s = h[i] & 0x8000 ? -1 : 1, e = (h[i] >> 10) & 0x1f, f = h[i] & 0x3ff;
      out[i] = e === 0 ? s * f * Math.pow(2, -24)
        : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * Math.pow(2, e - 15);
    }
    return out;
  }
  const u32 = (b64) => new Uint32Array(bytes(b64));

  const pos = new Float32Array(bytes(D.pos));
  const X = [], Y = [], Z = [];
  for (let i = 0; i < N; i++) {
    X.push(pos[3 * i]); Y.push(pos[3 * i + 1]); Z.push(pos[3 * i + 2]);
  }
  const parts = D.parts.map((b) => (b ? new Uint8Array(bytes(b)) : null));

  const layers = D.layers.map((L) => {
    if (L.left_out) return { name: L.name, kind: L.kind, heads: L.heads, leftOut: true };
    const query = u32(L.query), rowptr = u32(L.rowptr), col = u32(L.col);
    const mean = half(L.mean), w = L.w ? half(L.w) : null;
    const rowOf = new Int32Array(L.kind === "pool" ? 1 : N).fill(-1);
    query.forEach((p, r) => { rowOf[p] = r; });
    const nodes = L.query_nodes ? u32(L.query_nodes) : query;
    if (L.kind !== "pool") { // -2: a query node that reads nothing
      nodes.forEach((p) => { if (rowOf[p] < 0) rowOf[p] = -2; });
    }
    return { name: L.name, kind: L.kind, residual: L.residual, heads: L.heads, query, rowptr,
             col, mean, w, rowOf, nodes, sources: u32(L.sources), focus: L.focus };
  });

  function needed(L) {
    if (L.leftOut) {
      throw new Error("layer " + L.name + " is left out of this page to keep it under 15 MB; " +
                      "the PNG of pcattn visualize --layer draws it");
    }
  }
  function weights(L, head) { // Float32Array [nnz] of one head, or the mean
    needed(L);
    if (head === null || head === undefined) return L.mean;
    if (!L.w) throw new Error("this page holds only the mean over heads of layer " + L.name);
    const out = new Float32Array(L.col.length);
    for (let e = 0; e < out.length; e++) out[e] = L.w[e * L.heads + head];
    return out;
  }
  function snap(L, p) { // nearest query node of layer L to input point p
    if (L.kind === "pool") return p;
    needed(L);
    let best = -1, bestD = Infinity;
    for (const q of L.nodes) {
      const dx = X[q] - X[p], dy = Y[q] - Y[p], dz = Z[q] - Z[p], d = dx * dx + dy * dy + dz * dz;
      if (d < bestD) { bestD = d; best = q; }
    }
    return best;
  }
  const queriesOf = (s) => s.queries || (s.query === undefined ? [] : [s.query]);
  const isRelative = (s) => s.mode !== "rollout" && s.relative !== false && s.relative !== 0;

  function mapRead(l, head, ps, relative) { // quantities.map_read
    const L = layers[l], w = weights(L, head), values = new Float32Array(N);
    const read = new Uint8Array(N);
    const rows = L.kind === "pool" ? [0] : ps.map((p) => L.rowOf[snap(L, p)]);
    for (const r of rows) { // -1 / -2: the query reads nothing
      if (r < 0) continue;
      const n = relative ? L.rowptr[r + 1] - L.rowptr[r] : 1;
      for (let e = L.rowptr[r]; e < L.rowptr[r + 1]; e++) {
        values[L.col[e]] = Math.max(values[L.col[e]], w[e] * n);
        read[L.col[e]] = 1;
      }
    }
    return { values, read };
  }
  function receivedValues(l, head, relative) { // quantities.attention_received
    const L = layers[l], w = weights(L, head), out = new Float32Array(N);
    const uniform = new Float64Array(N);
    for (let r = 0; r + 1 < L.rowptr.length; r++) {
      const n = L.rowptr[r + 1] - L.rowptr[r];
      for (let e = L.rowptr[r]; e < L.rowptr[r + 1]; e++) {
        out[L.col[e]] += w[e];
        uniform[L.col[e]] += 1 / n;
      }
    }
    if (relative) for (let i = 0; i < N; i++) out[i] = uniform[i] > 0 ? out[i] / uniform[i] : 0;
    return out;
  }
  function rolloutRow(l, p) { // row of S_l ... S_1 (rollout_step of quantities.py)
    let r = new Float64Array(N), from = l;
    if (layers[l].kind === "pool") { // the cloud is the query: its pooling weights, rolled out
      r = Float64Array.from(mapRead(l, null, [p], false).values);
      from = l - 1;
    } else {
      r[snap(layers[l], p)] = 1;
    }
    for (let j = from; j >= 0; j--) {
      const L = layers[j];
      if (L.kind === "pool") continue;
      needed(L);
      const next = new Float64Array(N);
      for (let i = 0; i < N; i++) {
        if (r[i] === 0) continue;
        const row = L.rowOf[i];
        if (row === -1 || (row === -2 && L.residual)) { next[i] += r[i]; continue; } // identity
        if (row === -2) continue;
        const a = L.rowptr[row], b = L.rowptr[row + 1];
        let total = L.residual ? 1 : 0;
        for (let e = a; e < b; e++) total += L.mean[e];
        if (total <= 0) continue;
        for (let e = a; e < b; e++) next[L.col[e]] += r[i] * L.mean[e] / total;
        if (L.residual) next[i] += r[i] / total;
      }
      r = next;
    }
    return r;
  }
  function rolloutValues(l, ps) { // the largest over the queries
    const out = new Float32Array(N);
    for (const p of (layers[l].kind === "pool" ? [0] : ps)) {
      const r = rolloutRow(l, p);
      for (let i = 0; i < N; i++) out[i] = Math.max(out[i], r[i]);
    }
    return out;
  }
  function computeView(s) { // values [N] and active [N] (which points carry a value)
    const L = layers[s.layer], qs = queriesOf(s), rel = isRelative(s);
    if (s.mode === "map") {
      const m = mapRead(s.layer, s.head, qs, rel);
      return { values: m.values, active: m.read };
    }
    if (s.mode === "received") {
      const values = receivedValues(s.layer, s.head, rel), active = new Uint8Array(N);
      if (rel) values.forEach((v, i) => { active[i] = v > 0 ? 1 : 0; });
      else L.sources.forEach((i) => { active[i] = 1; });
      return { values, active };
    }
    return { values: rolloutValues(s.layer, qs), active: new Uint8Array(N).fill(1) };
  }
  const compute = (s) => computeView(s).values;

  function scaleOf(values, active, skip, relative) { // colors.value_scale
    let top = relative ? -Infinity : 0, bottom = -Infinity, zero = false;
    for (let i = 0; i < N; i++) {
      if (!active[i] || skip.has(i)) continue;
      if (!relative) { top = Math.max(top, values[i]); continue; }
      if (values[i] > 0) {
        top = Math.max(top, Math.log2(values[i]));
        bottom = Math.max(bottom, -Math.log2(values[i]));
      } else {
        zero = true;
      }
    }
    if (!relative) return { lo: 0, hi: top > 0 ? top : 1, clipped: false };
    if (top === -Infinity) top = bottom = 0;
    const span = Math.max(top > 0 ? top : bottom, MIN_SPAN);
    return { lo: -span, hi: span, clipped: zero || bottom > span + 1e-9 };
  }
  function ticks(sc, relative) { // colors.Scale.ticks
    if (!relative) {
      const v = [0, 1, 2, 3, 4].map((k) => sc.lo + (sc.hi - sc.lo) * k / 4);
      return { tickvals: v, ticktext: v.map((t) => Number(t.toPrecision(3)).toString()) };
    }
    const span = sc.hi - sc.lo;
    let inner = RATIO_TICKS.filter((r) => sc.lo + 0.15 * span < Math.log2(r) &&
                                          Math.log2(r) < sc.hi - 0.15 * span);
    while (inner.length > 5) inner = inner.filter((_, k) => k % 2 === inner.indexOf(1) % 2);
    const ratios = [Math.pow(2, sc.lo)].concat(inner, [Math.pow(2, sc.hi)]);
    const ticktext = ratios.map((r) => r === 1 ? "1 uniform"
      : "x" + Number(r.toPrecision(r > 1 ? 3 : 2)).toString());
    if (sc.clipped) ticktext[0] = "<= " + ticktext[0];
    return { tickvals: ratios.map(Math.log2), ticktext };
  }

  const state = Object.assign({}, D.init);
  const plot = document.getElementById("plot");
  const api = { state, compute, computeView, snap: (l, p) => snap(layers[l], p), values: null,
                scale: null, hovered: null, renders: 0, error: null };
  window.pcattn = api;
  const el = (id) => document.getElementById(id);

  function headLabel() {
    return state.head === null || state.mode === "rollout" ? "mean of heads" : "head " + state.head;
  }
  function focusText() {
    const F = layers[state.layer].focus;
    if (!F || state.mode === "rollout" || state.mode.endsWith("parts")) return "";
    const h = state.head, avg = (a) => a.reduce((x, y) => x + y, 0) / a.length;
    const e = h === null ? avg(F.entropy) : F.entropy[h], t = h === null ? avg(F.top1) : F.top1[h];
    let text = "focus of this layer" + (h === null ? " (mean of heads)" : ", head " + h) +
      ": entropy " + e.toFixed(3) + " (1 = uniform), top-1 share " + t.toFixed(3) +
      " (uniform " + F.uniform_top1.toFixed(3) + ")";
    if (h === null && F.entropy.length > 1) {
      const k = F.entropy.indexOf(Math.min(...F.entropy));
      text += "; sharpest head " + k + ": entropy " + F.entropy[k].toFixed(3);
    }
    return text;
  }
  function partsTraces() {
    const labels = parts[state.mode === "true parts" ? 1 : 0], traces = [], legend = [];
    const ids = Array.from(new Set(labels)).sort((a, b) => a - b);
    for (const id of ids) {
      const idx = [];
      labels.forEach((v, i) => { if (v === id) idx.push(i); });
      const colour = PART_COLOURS[id % 20];
      traces.push({ type: "scatter3d", mode: "markers", name: "part " + id,
                    x: idx.map((i) => X[i]), y: idx.map((i) => Y[i]), z: idx.map((i) => Z[i]),
                    customdata: idx, marker: { size: pointSize(), color: colour },
                    hovertemplate: "point %{customdata}<br>part " + id + "<extra></extra>" });
      legend.push('<span class="swatch" style="background:' + colour + '"></span>part ' + id);
    }
    el("legend").innerHTML = legend.join("");
    return traces;
  }
  const pointSize = () => Math.max(2, Math.min(6, 2000 / N));

  function render() {
    try {
      let data;
      const layout = { uirevision: "keep", showlegend: false, margin: { l: 0, r: 0, t: 8, b: 0 },
                       scene: { aspectmode: "data", xaxis: { visible: false },
                                yaxis: { visible: false }, zaxis: { visible: false } } };
      const L = layers[state.layer];
      if (state.mode.endsWith("parts")) {
        data = partsTraces();
        api.values = null;
        el("status").textContent = state.mode + " (click a point for its attention map)";
      } else {
        el("legend").innerHTML = "";
        const view = computeView(state), vals = view.values, rel = isRelative(state);
        const pooled = L.kind === "pool"; // its query is the cloud
        const q = state.mode === "received" || pooled ? []
          : Array.from(new Set(queriesOf(state).map((p) => snap(L, p))));
        const sc = scaleOf(vals, view.active, new Set(q), rel);
        const on = [];
        let off = [];
        for (let i = 0; i < N; i++) (view.active[i] ? on : off).push(i);
        if (off.length > FADED_SHOWN) { // decimated for display; every valued point is drawn
          const stride = off.length / FADED_SHOWN;
          off = Array.from({ length: FADED_SHOWN }, (_, k) => off[Math.floor(k * stride)]);
        }
        const pick = (A, I) => I.map((i) => A[i]);
        const size = pointSize();
        const quantity = D.quantity[state.mode + "," + (rel ? 1 : 0)];
        data = [
          { type: "scatter3d", mode: "markers", name: "no value", x: pick(X, off),
            y: pick(Y, off), z: pick(Z, off), customdata: off, opacity: 0.35,
            marker: { size: size * (on.length < N ? 0.7 : 1), color: "rgb(209,209,209)" },
            hovertemplate: "point %{customdata}<br>" + (state.mode === "map" ? "not read"
              : "no value in this layer") + "<extra></extra>" },
          { type: "scatter3d", mode: "markers", name: "attention", x: pick(X, on),
            y: pick(Y, on), z: pick(Z, on), customdata: on.map((i) => [i, vals[i]]),
            marker: { size: size * (off.length ? 1.3 : 1),
                      color: on.map((i) => rel ? Math.log2(Math.max(vals[i], 1e-30)) : vals[i]),
                      colorscale: rel ? D.diverging : D.sequential, cmin: sc.lo, cmax: sc.hi,
                      showscale: true,
                      colorbar: Object.assign({ thickness: 14, len: 0.7, y: 0.42,
                        title: { text: quantity + "<br>layer " + state.layer + ", " + headLabel(),
                                 side: "top", font: { size: 12 } } }, ticks(sc, rel)) },
            hovertemplate: "point %{customdata[0]}<br>" + quantity +
              ": %{customdata[1]:.4f}<extra></extra>" },
          { type: "scatter3d", mode: "markers", name: "query", x: pick(X, q), y: pick(Y, q),
            z: pick(Z, q), customdata: q, hovertemplate: "query point %{customdata}<extra></extra>",
            marker: { size: 12, color: "red", symbol: "circle-open", line: { width: 3 } } },
        ];
        api.values = vals;
        api.scale = sc;
        el("status").textContent = state.mode + ", layer " + state.layer + " (" + L.name + "), " +
          headLabel() + (q.length ? ", queries " + q.join(", ") +
            " (click a point: query; shift-click: add one)" : "");
      }
      el("focus").textContent = focusText();
      api.error = null;
      return Plotly.react(plot, data, layout, { displaylogo: false, responsive: true })
        .then(() => {
          if (api.renders === 0) api.firstDrawMs = performance.now(); // since navigation
          api.renders += 1;
        });
    } catch (err) {
      api.error = String(err.message || err);
      el("status").textContent = api.error;
      return Promise.resolve();
    }
  }

  function fillHeads() {
    const sel = el("head"), L = layers[state.layer];
    const options = [["", "mean"]];
    if (L.w) for (let h = 0; h < L.heads; h++) options.push([String(h), String(h)]);
    sel.innerHTML = "";
    for (const [v, t] of options) sel.add(new Option(t, v));
    if (state.head !== null && !(L.w && state.head < L.heads)) state.head = null;
    sel.value = state.head === null ? "" : String(state.head);
    sel.disabled = state.mode === "rollout" || state.mode.endsWith("parts");
    el("scale").value = isRelative(state) ? "1" : "0";
    el("scale").disabled = state.mode === "rollout" || state.mode.endsWith("parts");
    el("layer").value = String(state.layer);
    el("depth").value = String(state.layer);
  }
  const modes = ["map", "received", "rollout"];
  if (parts[0]) modes.push("predicted parts");
  if (parts[1]) modes.push("true parts");
  layers.forEach((L, i) => {
    const o = new Option(i + ": " + L.name + (L.leftOut ? " (left out: page size)" : ""),
                         String(i));
    o.disabled = Boolean(L.leftOut);
    el("layer").add(o);
  });
  for (const m of modes) el("mode").add(new Option(m, m));
  el("depth").max = String(layers.length - 1);
  el("mode").value = state.mode;
  el("title").textContent = D.title;
  el("labels").textContent = D.labels;
  fillHeads();

  function setLayer(l) { state.layer = l; fillHeads(); return render(); }
  el("layer").addEventListener("change", () => setLayer(Number(el("layer").value)));
  el("depth").addEventListener("input", () => setLayer(Number(el("depth").value)));
  el("mode").addEventListener("change", () => {
    state.mode = el("mode").value; fillHeads(); render();
  });
  el("head").addEventListener("change", (ev) => {
    state.head = ev.target.value === "" ? null : Number(ev.target.value); render();
  });
  el("scale").addEventListener("change", () => {
    state.relative = el("scale").value === "1"; render();
  });
  let timer = null;
  el("play").addEventListener("click", () => {
    if (timer !== null) {
      clearInterval(timer); timer = null; el("play").textContent = "play"; return;
    }
    el("play").textContent = "stop";
    timer = setInterval(() => setLayer((state.layer + 1) % layers.length), 1200);
  });

  function choose(p, add) { // a click: p becomes the query; shift-click adds (or removes) it
    if (state.mode.endsWith("parts")) { state.mode = "map"; el("mode").value = "map"; fillHeads(); }
    const qs = queriesOf(state);
    if (!add) state.queries = [p];
    else state.queries = qs.includes(p) ? (qs.length > 1 ? qs.filter((x) => x !== p) : qs)
      : qs.concat([p]);
    delete state.query;
    return render();
  }
  api.choose = choose;

  api.ready = render().then(() => {
    // a click is judged by what is hovered (plotly's hover reaches further than its 3D click)
    // and is a press and release without a drag (a drag rotates the view)
    let down = null;
    plot.addEventListener("mousedown", (ev) => { down = [ev.clientX, ev.clientY]; }, true);
    plot.addEventListener("mouseup", (ev) => {
      const moved = down ? Math.hypot(ev.clientX - down[0], ev.clientY - down[1]) : Infinity;
      down = null;
      if (moved <= 4 && api.hovered !== null) choose(api.hovered, ev.shiftKey);
    }, true);
    plot.on("plotly_hover", (ev) => {
      const pt = ev.points[0], c = pt.customdata;
      api.hovered = Array.isArray(c) ? c[0] : (c === undefined ? null : c);
      const box = pt.bbox;
      api.hoveredAt = box ? [(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2] : null;
    });
    plot.on("plotly_unhover", () => { api.hovered = null; });
  });
})();
