// The attention page of pcattn.viz.html: decodes the embedded sparse maps and computes in
// the browser what pcattn/viz/quantities.py computes (map, received, rollout), so a click
// on a point makes it the query. window.pcattn exposes the state and the computations.
"use strict";
(function () {
  const D = PCATTN_DATA;
  const N = D.n;

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

  const layers = D.layers.map((L) => {
    const query = u32(L.query), rowptr = u32(L.rowptr), col = u32(L.col);
    const mean = half(L.mean), w = L.w ? half(L.w) : null;
    const rowOf = new Int32Array(L.kind === "pool" ? 1 : N).fill(-1);
    query.forEach((p, r) => { rowOf[p] = r; });
    const nodes = L.query_nodes ? u32(L.query_nodes) : query;
    if (L.kind !== "pool") { // -2: a query node that reads nothing
      nodes.forEach((p) => { if (rowOf[p] < 0) rowOf[p] = -2; });
    }
    return { name: L.name, kind: L.kind, residual: L.residual, heads: L.heads, query, rowptr,
             col, mean, w, rowOf, nodes, sources: u32(L.sources) };
  });

  function weights(L, head) { // Float32Array [nnz] of one head, or the mean
    if (head === null || head === undefined) return L.mean;
    if (!L.w) throw new Error("this page holds only the mean over heads of layer " + L.name);
    const out = new Float32Array(L.col.length);
    for (let e = 0; e < out.length; e++) out[e] = L.w[e * L.heads + head];
    return out;
  }
  function snap(L, p) { // nearest query node of layer L to input point p
    if (L.kind === "pool") return p;
    let best = -1, bestD = Infinity;
    for (const q of L.nodes) {
      const dx = X[q] - X[p], dy = Y[q] - Y[p], dz = Z[q] - Z[p], d = dx * dx + dy * dy + dz * dz;
      if (d < bestD) { bestD = d; best = q; }
    }
    return best;
  }
  function mapValues(l, head, p) {
    const L = layers[l], w = weights(L, head), out = new Float32Array(N);
    const r = L.kind === "pool" ? 0 : L.rowOf[snap(L, p)]; // -2: the query reads nothing
    if (r < 0) return out;
    for (let e = L.rowptr[r]; e < L.rowptr[r + 1]; e++) {
      out[L.col[e]] = Math.max(out[L.col[e]], w[e]);
    }
    return out;
  }
  function receivedValues(l, head) {
    const L = layers[l], w = weights(L, head), out = new Float32Array(N);
    for (let e = 0; e < L.col.length; e++) out[L.col[e]] += w[e];
    return out;
  }
  function rolloutValues(l, p) { // row of S_l ... S_1 (rollout_step of quantities.py)
    let r = new Float64Array(N), from = l;
    if (layers[l].kind === "pool") { // the cloud is the query: its pooling weights, rolled out
      r = Float64Array.from(mapValues(l, null, p));
      from = l - 1;
    } else {
      r[snap(layers[l], p)] = 1;
    }
    for (let j = from; j >= 0; j--) {
      const L = layers[j];
      if (L.kind === "pool") continue;
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
    return Float32Array.from(r);
  }
  function compute(s) {
    if (s.mode === "map") return mapValues(s.layer, s.head, s.query);
    if (s.mode === "received") return receivedValues(s.layer, s.head);
    return rolloutValues(s.layer, s.query);
  }

  const state = Object.assign({}, D.init);
  const plot = document.getElementById("plot");
  const api = { state, compute, snap: (l, p) => snap(layers[l], p), values: null,
                hovered: null, renders: 0, error: null };
  window.pcattn = api;

  function shown(s) { // input points drawn in colour: the layer's sources, or all
    if (s.mode === "rollout") return null;
    return layers[s.layer].sources;
  }
  function render() {
    try {
      const vals = compute(state);
      const idx = shown(state) || Array.from({ length: N }, (_, i) => i);
      const c = Array.from(idx, (i) => vals[i]);
      const pooled = layers[state.layer].kind === "pool"; // its query is the cloud
      const q = state.mode === "received" || pooled ? []
        : [snap(layers[state.layer], state.query)];
      let top = 0; // over the points but the query (colors.value_range of the Python side)
      for (const i of idx) if (i !== q[0]) top = Math.max(top, vals[i]);
      const pick = (A, I) => Array.from(I, (i) => A[i]);
      const size = Math.max(2, Math.min(6, 2000 / N));
      const data = [
        { type: "scatter3d", mode: "markers", name: "input cloud", x: X, y: Y, z: Z,
          marker: { size: size, color: "rgb(209,209,209)" }, opacity: 0.35, hoverinfo: "none" },
        { type: "scatter3d", mode: "markers", name: "attention", x: pick(X, idx), y: pick(Y, idx),
          z: pick(Z, idx), customdata: Array.from(idx),
          marker: { size: size, color: c, colorscale: "Viridis", cmin: 0, cmax: top > 0 ? top : 1,
                    showscale: true, colorbar: { thickness: 14 } },
          hovertemplate: "point %{customdata}<br>%{marker.color:.4f}<extra></extra>" },
        { type: "scatter3d", mode: "markers", name: "query", x: pick(X, q), y: pick(Y, q),
          z: pick(Z, q), hoverinfo: "none",
          marker: { size: 12, color: "red", symbol: "circle-open", line: { width: 3 } } },
      ];
      const layout = { uirevision: "keep", showlegend: false, margin: { l: 0, r: 0, t: 0, b: 0 },
                       scene: { aspectmode: "data", xaxis: { visible: false },
                                yaxis: { visible: false }, zaxis: { visible: false } } };
      api.values = vals;
      api.error = null;
      const head = state.head === null || state.mode === "rollout" ? "mean of heads"
        : "head " + state.head;
      document.getElementById("status").textContent =
        state.mode + ", layer " + state.layer + " (" + layers[state.layer].name + "), " + head +
        (q.length ? ", query point " + q[0] + " (click a point to change it)" : "");
      return Plotly.react(plot, data, layout, { displaylogo: false, responsive: true })
        .then(() => { api.renders += 1; });
    } catch (err) {
      api.error = String(err.message || err);
      document.getElementById("status").textContent = api.error;
      return Promise.resolve();
    }
  }

  function fillHeads() {
    const sel = document.getElementById("head"), L = layers[state.layer];
    const options = [["", "mean"]];
    if (L.w) for (let h = 0; h < L.heads; h++) options.push([String(h), String(h)]);
    sel.innerHTML = "";
    for (const [v, t] of options) sel.add(new Option(t, v));
    if (state.head !== null && !(L.w && state.head < L.heads)) state.head = null;
    sel.value = state.head === null ? "" : String(state.head);
    sel.disabled = state.mode === "rollout";
  }
  const layerSel = document.getElementById("layer"), modeSel = document.getElementById("mode");
  layers.forEach((L, i) => layerSel.add(new Option(i + ": " + L.name, String(i))));
  for (const m of ["map", "received", "rollout"]) modeSel.add(new Option(m, m));
  layerSel.value = String(state.layer);
  modeSel.value = state.mode;
  document.getElementById("title").textContent = D.title;
  fillHeads();

  layerSel.addEventListener("change", () => {
    state.layer = Number(layerSel.value); fillHeads(); render();
  });
  modeSel.addEventListener("change", () => { state.mode = modeSel.value; fillHeads(); render(); });
  document.getElementById("head").addEventListener("change", (ev) => {
    state.head = ev.target.value === "" ? null : Number(ev.target.value); render();
  });

  api.ready = render().then(() => {
    plot.on("plotly_click", (ev) => {
      const pt = ev.points[0];
      const query = pt.curveNumber === 1 ? pt.customdata : pt.pointNumber;
      if (pt.curveNumber === 2 || query === state.query) return; // plotly repeats a held click
      state.query = query;
      render();
    });
    plot.on("plotly_hover", (ev) => {
      const pt = ev.points[0];
      api.hovered = pt.curveNumber === 1 ? pt.customdata
        : pt.curveNumber === 0 ? pt.pointNumber : null;
      const box = pt.bbox;
      api.hoveredAt = box ? [(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2] : null;
    });
    plot.on("plotly_unhover", () => { api.hovered = null; });
  });
})();
