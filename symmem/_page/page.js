"use strict";
// symmem's calculator page.  DATA (the model, the lookup tables, the formulas) and FUNCTIONS
// (each component of each structure, printed from the memory model's sympy expressions by
// symmem/jscode.py) come before this script.  Nothing here computes a byte by itself: it picks
// the compiled functions the choices select, gives them the inputs, and adds the components.
const T0 = performance.now();

// ---------------------------------------------------------------- exact rationals
// A value is [numerator, denominator] of BigInts, reduced, denominator > 0.
function gcd(a, b) { if (a < 0n) a = -a; if (b < 0n) b = -b; while (b) { const t = a % b; a = b; b = t; } return a; }
function mk(n, d) {
  if (d === 0n) throw new Error("division by zero");
  if (d < 0n) { n = -n; d = -d; }
  const g = gcd(n, d);
  return g > 1n ? [n / g, d / g] : [n, d];
}
function add(...xs) { let n = 0n, d = 1n; for (const x of xs) { n = n * x[1] + x[0] * d; d *= x[1]; } return mk(n, d); }
function mul(...xs) { let n = 1n, d = 1n; for (const x of xs) { n *= x[0]; d *= x[1]; } return mk(n, d); }
function pow(x, k) {
  if (k < 0) { x = [x[1], x[0]]; k = -k; }
  return mk(x[0] ** BigInt(k), x[1] ** BigInt(k));
}
function cmp(a, b) { const l = a[0] * b[1], r = b[0] * a[1]; return l < r ? -1 : l > r ? 1 : 0; }
function min(...xs) { return xs.reduce((a, b) => (cmp(a, b) <= 0 ? a : b)); }
function max(...xs) { return xs.reduce((a, b) => (cmp(a, b) >= 0 ? a : b)); }
function floor(x) { let q = x[0] / x[1]; if (x[0] < 0n && q * x[1] !== x[0]) q -= 1n; return [q, 1n]; }
function ceil(x) { let q = x[0] / x[1]; if (x[0] > 0n && q * x[1] !== x[0]) q += 1n; return [q, 1n]; }
function lt(a, b) { return cmp(a, b) < 0; }
function le(a, b) { return cmp(a, b) <= 0; }
function gt(a, b) { return cmp(a, b) > 0; }
function ge(a, b) { return cmp(a, b) >= 0; }
function eq(a, b) { return cmp(a, b) === 0; }
function ne(a, b) { return cmp(a, b) !== 0; }
function pw(...cv) { for (let i = 0; i < cv.length; i += 2) if (cv[i]) return cv[i + 1]; throw new Error("no branch"); }
function R(text) { const [n, d] = String(text).split("/"); return mk(BigInt(n), BigInt(d || "1")); }
// as `symmem memory --json` writes a number: an integer, or p/q
function exact(x) { return x[1] === 1n ? x[0].toString() : `${x[0]}/${x[1]}`; }
function approx(x) { return Number(x[0]) / Number(x[1]); }
const GiB = 2 ** 30;

// ---------------------------------------------------------------- the model's memory
// pp and cp are looked up as "1" or "2+" (their number is an argument of the functions)
const DEGREES = ["pp", "cp"];
function choicesOf(mode, name) {
  if (DEGREES.includes(name)) return ["1", "2+"];
  const f = DATA.modes[mode].fields.find((g) => g.name === name) || DATA.scale_fields[mode].find((g) => g.name === name);
  return f.choices;
}
function choice(state, name) { return DEGREES.includes(name) ? (BigInt(state[name]) > 1n ? "2+" : "1") : state[name]; }
function lookup(state, table) {
  const t = DATA.modes[state.mode][table];
  let i = 0;
  for (const name of t.fields) {
    const cs = choicesOf(state.mode, name);
    const k = cs.indexOf(choice(state, name));
    if (k < 0) throw new Error(`unknown ${name} '${state[name]}'`);
    i = i * cs.length + k;
  }
  return t.values[i];
}
const SHOWN = DATA.free.filter((name) => !DATA.unused.includes(name));
const INPUTS = ["tp", "pp", "dp", "ep", "cp", "lora_rank", "overhead", ...SHOWN];

// Everything one state of the form means: {error} or {parts, args, zero, notes}.
function prepare(state) {
  for (const name of INPUTS) {
    const v = String(state[name]);
    const least = name === "overhead" ? 0n : 1n;
    if (!/^\d+$/.test(v) || BigInt(v) < least) return { error: `${name} must be a whole number >= ${least}` };
  }
  const b = lookup(state, "bytes");
  if (b < 0) return { error: DATA.errors[-1 - b] };
  const k = lookup(state, "scale");
  if (k < 0) return { error: DATA.errors[-1 - k] };
  const s = lookup(state, "states"), a = lookup(state, "activations");
  if (s < 0) return { error: DATA.errors[-1 - s] };
  for (const [opt, size, value, path] of DATA.sizes) {
    const degree = BigInt(state[opt] ?? 1);
    if (degree !== 1n && BigInt(value) % degree !== 0n) {
      return { error: `${opt} = ${degree} does not divide ${size} = ${value} of layer ${path}` };
    }
  }
  if (a < 0) return { error: DATA.errors[-1 - a] };
  const row = DATA.bytes[b];
  const values = {
    tp: state.tp, pp: state.pp, dp: state.dp, ep: state.ep,
    weight_bytes: row[0], grad_bytes: row[1], state_bytes: row[2], kv_bytes: row[3],
    master: row[4], grad_copy: row[5], overhead: state.overhead, micro_batches: state.pp,
    lora_rank: state.lora_rank, cp: state.cp,
  };
  DATA.scale_knobs.forEach((name, i) => { values[name] = DATA.scale[k][i]; });
  for (const name of DATA.free) values[name] = state[name] ?? DATA.initial[name];
  const args = DATA.args.map((name) => R(values[name]));
  const zero = Number(state.mode === "train" ? state.zero : "0");
  const states = DATA.parts[s], acts = DATA.parts[a];
  const notes = [...new Set([...states.notes, ...acts.notes])];
  return { states, acts, args, zero, notes, overhead: R(state.overhead) };
}

// Each component and the total, exactly: {name: [n, d]}, and each formula's index.
function evaluate(p, at) {
  let args = p.args;
  if (at) { args = args.slice(); args[at[0]] = at[1]; }
  const out = {}, formulas = {};
  for (const [part, names] of [[p.states, DATA.states], [p.acts, DATA.activations]]) {
    names.forEach((name, i) => {
      out[name] = FUNCTIONS[part.fn[i]](args)[0];
      formulas[name] = part.formula[i][p.zero];
    });
  }
  out.overhead = p.overhead;
  out.total = add(...DATA.components.map((c) => out[c]));
  return { bytes: out, formulas };
}

// The largest value of `name` (>= 1) with total <= budget: as `symmem solve` answers it.
function largest(p, name, budget) {
  const i = DATA.args.indexOf(name);
  const total = (x) => evaluate(p, [i, [x, 1n]]).bytes.total;
  const B = [budget, 1n];
  const LIMIT = 2n ** 128n;
  if (cmp(total(1n), B) > 0) return { value: null };
  if (cmp(total(1n), total(LIMIT)) === 0) return { value: null, constant: true };
  let lo = 1n, hi = 2n;
  while (cmp(total(hi), B) <= 0) { lo = hi; hi *= 2n; if (hi > LIMIT) return { value: null, unbounded: true }; }
  while (hi - lo > 1n) { const mid = (lo + hi) / 2n; if (cmp(total(mid), B) <= 0) lo = mid; else hi = mid; }
  return { value: lo };
}

// ---------------------------------------------------------------- serving (vLLM)
// One compiled function of every vLLM term (symmem.serving.vllm.single_stage_terms, over
// the memory model's weights, KV bytes per token and forward peak); the engine's defaults
// (batched tokens, sequences, non-torch bytes) are outputs of the same function.
const SERVE = DATA.serving && DATA.serving.fn !== undefined ? DATA.serving : null;
const SERVE_INITIAL = SERVE ? {
  serve_kv: "auto", gmu: SERVE.gpu_memory_utilization, max_model_len: SERVE.max_model_len,
  block_size: SERVE.block_size, cuda_graph: SERVE.cuda_graph, non_torch: "",
  max_num_batched_tokens: "", max_num_seqs: "",
} : {};
const SERVE_BARS = ["weights_bytes", "activation_peak_bytes", "non_torch_bytes", "cuda_graph_bytes", "kv_cache_bytes"];
// a decimal as it is written ("0.9" is 9/10), as symmem.serving.vllm.requested_bytes reads it
function dec(text) {
  const m = /^(\d*)\.?(\d*)$/.exec(String(text).trim());
  if (!m || m[1] + m[2] === "") return null;
  return mk(BigInt((m[1] || "0") + m[2]), 10n ** BigInt(m[2].length));
}
function whole(state, name, least, optional) {
  const v = String(state[name] ?? "").trim();
  if (optional && v === "") return "";
  if (!/^\d+$/.test(v) || BigInt(v) < least) return { error: `${name} must be a whole number >= ${least}` };
  return v;
}
// {error} or {values: {output: [n, d]}}, as `symmem serving --json` would answer
function serve(state) {
  const v = {};
  for (const [name, least, optional] of [["tp", 1n], ["max_model_len", 1n], ["block_size", 1n], ["cuda_graph", 0n],
    ["max_num_batched_tokens", 1n, true], ["max_num_seqs", 1n, true], ["non_torch", 0n, true]]) {
    const w = whole(state, name, least, optional);
    if (w.error) return w;
    v[name] = w;
  }
  v.gpu_memory_utilization = dec(state.gmu);
  if (!v.gpu_memory_utilization || cmp(v.gpu_memory_utilization, [0n, 1n]) <= 0 || cmp(v.gpu_memory_utilization, [1n, 1n]) > 0) {
    return { error: `gpu_memory_utilization must be in (0, 1], not ${state.gmu}` };
  }
  for (const [opt, size, value, path] of DATA.sizes) {
    if (opt === "tp" && BigInt(value) % BigInt(v.tp) !== 0n) return { error: `tp = ${v.tp} does not divide ${size} = ${value} of layer ${path}` };
  }
  if (state.gpu === "custom") {
    const b = budgetOf(state);
    if (b === null) return { error: "Enter a budget." };
    Object.assign(v, { budget: b.toString(), nvlink: "0", a100: "0" });
  } else {
    const g = SERVE.gpus[state.gpu];
    Object.assign(v, { budget: g.budget, nvlink: String(g.nvlink), a100: String(g.a100) });
  }
  v.kv_bytes = SERVE.kv_dtypes[state.serve_kv];
  const call = () => {
    const out = FUNCTIONS[SERVE.fn](SERVE.args.map((n) => (Array.isArray(v[n]) ? v[n] : R(v[n] === "" ? "1" : v[n]))));
    return Object.fromEntries(SERVE.outputs.map((n, i) => [n, out[i]]));
  };
  let values = call();
  for (const name of ["max_num_batched_tokens", "max_num_seqs", "non_torch"]) if (v[name] === "") v[name] = values[`default_${name}`];
  values = call();
  return { values };
}
function renderServe(state) {
  const r = serve(state);
  $("error").hidden = !r.error;
  $("ok").hidden = !!r.error;
  if (r.error) { $("error").textContent = r.error; return { error: r.error }; }
  const x = r.values;
  const rows = $("rows"), fill = $("bar-fill");
  rows.textContent = ""; fill.textContent = "";
  const budget = approx(x.budget_bytes);
  for (const name of SERVE.outputs) {
    if (name.startsWith("default_") || name === "starts") continue;
    const v = x[name];
    const tr = el("tr", { "data-component": name });
    const th = el("td");
    const i = SERVE_BARS.indexOf(name);
    if (i >= 0) th.append(el("span", { class: "swatch", style: `background: var(${COLORS[i]})` }));
    th.append(name);
    const bytes = name.endsWith("_bytes") && name !== "kv_bytes_per_token";
    tr.append(th, el("td", { class: "num exact", "data-exact": exact(v) }, pretty(v)), el("td", { class: "num" }, bytes ? (approx(v) / GiB).toFixed(2) : ""));
    rows.append(tr);
    if (SERVE.formulas[name]) {
      const fr = el("tr", { class: "formula-row" }), cell = el("td", { colspan: "3" });
      const det = el("details", { "data-component": name });
      det.append(el("summary", {}, `formula of ${name}`));
      const f = el("div", { class: "formula" });
      f.innerHTML = `<math display="block"><mtext>${name}</mtext><mo>=</mo>${SERVE.formulas[name]}</math>`;
      det.append(f); cell.append(det); fr.append(cell); rows.append(fr);
    }
    if (i >= 0 && cmp(v, [0n, 1n]) > 0) {
      fill.append(el("span", { style: `width: ${(100 * approx(v)) / budget}%; background: var(${COLORS[i]})`, title: `${name}: ${(approx(v) / GiB).toFixed(2)} GiB` }));
    }
  }
  $("bar-budget").hidden = false;
  $("bar-budget").style.left = `calc(${(100 * approx(x.requested_bytes)) / budget}% - 2px)`;
  $("bar").setAttribute("aria-label", `requested ${(approx(x.requested_bytes) / GiB).toFixed(2)} GiB of ${(budget / GiB).toFixed(2)} GiB`);
  const starts = x.starts[0] === 1n;
  $("summary").textContent = `KV cache ${(approx(x.kv_cache_bytes) / GiB).toFixed(2)} GiB: ${x.kv_tokens[0].toLocaleString("en-US")} tokens`;
  $("fits").className = starts ? "fits" : "over";
  $("fits").textContent = starts
    ? `Starts: ${approx(x.max_concurrency).toFixed(2)} requests of ${BigInt(state.max_model_len).toLocaleString("en-US")} tokens at once.`
    : `vLLM refuses to start: one request of ${BigInt(state.max_model_len).toLocaleString("en-US")} tokens does not fit (the longest that starts: ${x.max_model_len_that_starts[0].toLocaleString("en-US")}).`;
  $("notes").textContent = "";
  $("notes").append(el("li", {}, `${SERVE.engine}, ${SERVE.dtype} weights, one pipeline stage; the bar's line is the requested share (gpu_memory_utilization).`));
  return { serving: Object.fromEntries(SERVE.outputs.map((n) => [n, exact(x[n])])) };
}

// ---------------------------------------------------------------- the form
const $ = (id) => document.getElementById(id);
const form = $("form");
const CHOICES = {};
for (const mode of Object.keys(DATA.modes)) for (const f of DATA.modes[mode].fields) CHOICES[f.name] = f;
// the selects of the scale table (cp, zero and pp are inputs of their own)
for (const mode of Object.keys(DATA.scale_fields)) for (const f of DATA.scale_fields[mode]) if (!(f.name in CHOICES) && !DEGREES.includes(f.name)) CHOICES[f.name] = f;
const namesOf = (mode) => [...DATA.modes[mode].fields, ...DATA.scale_fields[mode]].map((f) => f.name);
const TRAIN_ONLY = new Set(namesOf("train").filter((n) => !namesOf("infer").includes(n)));
const INFER_ONLY = new Set(namesOf("infer").filter((n) => !namesOf("train").includes(n)));

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function group(name, label, input) {
  const div = el("div", { id: `g-${name}` });
  div.append(el("label", { for: `f-${name}` }, label), input);
  return div;
}
function build() {
  const m = DATA.model;
  $("model-name").textContent = m.name;
  $("model-source").textContent = m.source ? `from ${m.source}` : "";
  $("params-formula").innerHTML = `<math display="block"><mi>N</mi><mo>=</mo>${m.params_formula}</math>`;
  for (const name of SHOWN) {
    const input = el("input", { id: `f-${name}`, name, type: "number", min: "1", step: "1", inputmode: "numeric" });
    $("free-inputs").append(group(name, name, input));
    $("f-solve").append(el("option", { value: name }, name));
  }
  for (const f of Object.values(CHOICES)) {
    const select = el("select", { id: `f-${f.name}`, name: f.name });
    for (const c of f.choices) select.append(el("option", { value: c }, c));
    $("choice-inputs").append(group(f.name, f.label, select));
  }
  for (const g of DATA.gpus) {
    $("f-gpu").append(el("option", { value: g.key }, `${g.name} (${(Number(g.bytes) / GiB).toFixed(2)} GiB)`));
  }
  $("f-gpu").append(el("option", { value: "custom" }, "custom budget"));
  $("legend").textContent = Object.entries(DATA.legend).map(([k, v]) => `${k}: ${v}`).join("; ")
    + "; r: LoRA rank; every other symbol is an input of the form";
  const fixed = Object.entries(DATA.fixed);
  $("fixed").textContent = fixed.length ? `Fixed for every choice: ${fixed.map(([k, v]) => `${k} = ${v}`).join(", ")}.` : "";
  const mode = $("f-mode");
  if (SERVE) {
    mode.append(el("option", { value: "serve" }, "serving (vLLM)"));
    for (const k of Object.keys(SERVE.kv_dtypes)) $("f-serve_kv").append(el("option", { value: k }, k));
  } else {
    mode.append(el("option", { value: "serve", disabled: "" }, `serving: not offered (${(DATA.serving || {}).why || ""})`));
  }
  const gpu = DATA.gpus.find((g) => g.key === "h100-80gb") || DATA.gpus[0];
  setState({ ...DATA.initial, ...SERVE_INITIAL, gpu: gpu ? gpu.key : "custom", solve: SHOWN[0] || "" });
}
function setState(state) {
  for (const [k, v] of Object.entries(state)) {
    const input = form.elements.namedItem(k);
    if (input) input.value = String(v);
  }
}
function readState() {
  const state = {};
  for (const e of form.elements) if (e.name) state[e.name] = e.value;
  return state;
}
function budgetOf(state) {
  if (state.gpu === "custom") {
    const gib = Number(state.budget);
    if (!(gib >= 0) || !Number.isFinite(gib)) return null;
    // whole bytes: the budget is read as GiB, to the byte (as symmem's parse_bytes does)
    return BigInt(Math.floor(gib * GiB));
  }
  return BigInt(DATA.gpus.find((g) => g.key === state.gpu).bytes);
}

const COLORS = ["--c0", "--c1", "--c2", "--c3", "--c4", "--c5", "--c6"];
const openDetails = new Set();
function render(state) {
  const serving = state.mode === "serve";
  for (const e of document.querySelectorAll(".memory-only")) e.hidden = serving;
  for (const e of document.querySelectorAll(".serve-only")) e.hidden = !serving;
  $("results-title").textContent = serving ? "vLLM's budget per GPU" : "Memory per GPU";
  if (serving) { $("custom-budget").hidden = state.gpu !== "custom"; showParams(state); return renderServe(state); }
  const train = state.mode === "train";
  for (const n of TRAIN_ONLY) $(`g-${n}`).hidden = !train;
  for (const n of INFER_ONLY) $(`g-${n}`).hidden = train;
  document.querySelector(".when-lora").hidden = !(train && state.lora !== "off");
  $("custom-budget").hidden = state.gpu !== "custom";
  showParams(state);
  const p = prepare(state);
  $("error").hidden = !p.error;
  $("ok").hidden = !!p.error;
  if (p.error) { $("error").textContent = p.error; return { error: p.error }; }
  const { bytes, formulas } = evaluate(p);
  const budget = budgetOf(state);
  const rows = $("rows");
  for (const d of rows.querySelectorAll("details")) if (d.open) openDetails.add(d.dataset.component); else openDetails.delete(d.dataset.component);
  rows.textContent = "";
  const fill = $("bar-fill");
  fill.textContent = "";
  const total = approx(bytes.total);
  const scale = Math.max(total, budget === null ? 0 : Number(budget)) || 1;
  DATA.components.forEach((name, i) => {
    const v = bytes[name];
    const tr = el("tr", { "data-component": name });
    const th = el("td");
    th.append(el("span", { class: "swatch", style: `background: var(${COLORS[i]})` }), name);
    tr.append(th, el("td", { class: "num exact", "data-exact": exact(v) }, pretty(v)), el("td", { class: "num" }, (approx(v) / GiB).toFixed(2)));
    const fr = el("tr", { class: "formula-row" });
    const cell = el("td", { colspan: "3" });
    const det = el("details", { "data-component": name });
    if (openDetails.has(name)) det.open = true;
    det.append(el("summary", {}, `formula of ${name}`));
    const f = el("div", { class: "formula" });
    const formula = name === "overhead" ? "<mi>O</mi>" : DATA.formulas[formulas[name]];
    f.innerHTML = `<math display="block"><msub><mi>M</mi><mtext>${name}</mtext></msub><mo>=</mo>${formula}</math>`;
    det.append(f);
    cell.append(det);
    fr.append(cell);
    rows.append(tr, fr);
    if (v[0] !== 0n) {
      fill.append(el("span", { style: `width: ${(100 * approx(v)) / scale}%; background: var(${COLORS[i]})`, title: `${name}: ${(approx(v) / GiB).toFixed(2)} GiB` }));
    }
  });
  const tt = el("tr", { class: "total", "data-component": "total" });
  tt.append(el("td", {}, "total"), el("td", { class: "num exact", "data-exact": exact(bytes.total) }, pretty(bytes.total)), el("td", { class: "num" }, (total / GiB).toFixed(2)));
  rows.append(tt);
  $("summary").textContent = `${(total / GiB).toFixed(2)} GiB per GPU (${pretty(bytes.total)} bytes)`;
  const result = { bytes: Object.fromEntries(Object.entries(bytes).map(([k, v]) => [k, exact(v)])) };
  if (budget === null) {
    $("fits").textContent = "Enter a budget.";
    $("bar-budget").hidden = true;
  } else {
    const fits = cmp(bytes.total, [budget, 1n]) <= 0;
    const share = ((100 * total) / Number(budget || 1n)).toFixed(1);
    $("bar-budget").hidden = false;
    $("bar-budget").style.left = `calc(${(100 * Number(budget)) / scale}% - 2px)`;
    $("bar").setAttribute("aria-label", `${share}% of the budget of ${(Number(budget) / GiB).toFixed(2)} GiB`);
    let text = `${fits ? "Fits" : "Does not fit"}: ${share}% of ${(Number(budget) / GiB).toFixed(2)} GiB.`;
    $("fits").className = fits ? "fits" : "over";
    if (state.solve) {
      const best = largest(p, state.solve, budget);
      result.largest = best.value === null ? null : best.value.toString();
      text += best.constant ? ` The total does not depend on ${state.solve}.`
        : best.unbounded ? ` Any ${state.solve} fits.`
        : best.value === null ? ` Nothing fits, even ${state.solve} = 1.`
        : ` Largest ${state.solve} that fits: ${best.value.toLocaleString("en-US")}.`;
    }
    $("fits").textContent = text;
  }
  const notes = $("notes");
  notes.textContent = "";
  for (const n of p.notes) notes.append(el("li", {}, n));
  return result;
}
// the parameter counts, from their compiled expressions (a free symbol of the form may change them)
function showParams(state) {
  const m = DATA.model;
  try {
    const args = DATA.args.map((name) => (DATA.free.includes(name) ? R(state[name] ?? DATA.initial[name]) : [1n, 1n]));
    const count = (fn) => pretty(FUNCTIONS[fn](args)[0]);
    const params = `${count(m.params)} parameters`;
    $("model-params").textContent = m.active === null ? params : `${params}, ${count(m.active)} active per token`;
  } catch (e) {
    $("model-params").textContent = "";
  }
}
function pretty(x) {
  return x[1] === 1n ? x[0].toLocaleString("en-US") : `${x[0].toLocaleString("en-US")}/${x[1]} (≈ ${Math.round(approx(x)).toLocaleString("en-US")})`;
}
function update() { return render(readState()); }

build();
form.addEventListener("input", update);
form.addEventListener("change", update);
form.addEventListener("submit", (e) => e.preventDefault());
update();
const OPENED = performance.now();
document.documentElement.dataset.openMs = String(OPENED - T0);

// ---------------------------------------------------------------- test mode
// #test=<base64url of a JSON list of form states>: each state is put into the form and the
// page's own update runs; what the table shows is written into <pre id="test-output">.
if (location.hash.startsWith("#test=")) {
  const text = atob(location.hash.slice(6).replace(/-/g, "+").replace(/_/g, "/"));
  const cases = JSON.parse(text);
  const results = [];
  const t = performance.now();
  for (const c of cases) {
    setState({ ...DATA.initial, ...SERVE_INITIAL, ...c });
    const r = update();
    const shown = {};
    for (const td of document.querySelectorAll("#rows td.exact")) shown[td.parentElement.dataset.component] = td.dataset.exact;
    results.push(r.error ? { error: r.error } : r.serving ? { serving: r.serving } : { bytes: shown, largest: r.largest });
  }
  const perUpdate = cases.length ? (performance.now() - t) / cases.length : 0;
  $("test-output").textContent = JSON.stringify({
    results, open_ms: OPENED - T0, update_ms: perUpdate, params: $("model-params").textContent,
    // from the start of the navigation (reading the file, parsing) to the first full render
    since_navigation_ms: OPENED,
  });
}
