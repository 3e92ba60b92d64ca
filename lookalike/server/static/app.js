// lookalike's search page: plain JS over the REST API (see /docs). No build step, no dependencies.

const PAGE = 48;
const $ = (id) => document.getElementById(id);

const state = {
  token: null,          // kept in memory only
  query: null,          // {kind: "browse"|"text"|"url"|"image"|"item"|"examples", ...}
  selected: new Map(),  // id -> hit: results picked for "more like these" / "less like this"
  offset: 0,
  hasMore: false,
  loading: false,
  seq: 0,               // drops answers of searches that were replaced meanwhile
  previewUrl: null,
  dupes: { offset: 0, hasMore: false, loaded: false, seq: 0 },
  stats: null,
  mode: "vector",       // how words are searched: "vector" (pictures only) or "hybrid" (words + pictures)
  tag: null,            // the tag facet picked, or null
  scoreLegend: "",      // what a vector search's scores mean, for the table's metric
};

// ------------------------------------------------------------------ the API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let tokenWaiters = null;

function askToken(wrong) {
  if (!tokenWaiters) {
    tokenWaiters = [];
    $("token-hint").textContent = wrong
      ? "That token was not accepted. Try again."
      : "Enter the token given to lookalike serve --token. It is kept in this tab only.";
    $("token-input").value = "";
    $("token-dialog").showModal();
  }
  return new Promise((resolve) => tokenWaiters.push(resolve));
}

$("token-form").addEventListener("submit", () => {
  state.token = $("token-input").value.trim() || null;
  const waiters = tokenWaiters || [];
  tokenWaiters = null;
  waiters.forEach((resolve) => resolve());
  // thumbnails already on the page failed without the token: reload them
  document.querySelectorAll("img[data-src]").forEach((img) => { img.src = withToken(img.dataset.src); });
});

function withToken(path) {
  if (!state.token) return path;
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(state.token);
}

async function api(path, options = {}) {
  for (let attempt = 0; attempt < 4; attempt++) {
    const headers = new Headers(options.headers || {});
    if (state.token) headers.set("Authorization", "Bearer " + state.token);
    let response;
    try {
      response = await fetch(path, { ...options, headers });
    } catch (err) {
      throw new ApiError(0, "network", "The server could not be reached. Is lookalike serve still running?");
    }
    if (response.status === 401) {
      await askToken(Boolean(state.token));
      continue;
    }
    let body = null;
    try { body = await response.json(); } catch (err) { body = null; }
    if (!response.ok) {
      const e = (body && body.error) || {};
      throw new ApiError(response.status, e.code || "error", e.message || `The server answered ${response.status}.`);
    }
    return body;
  }
  throw new ApiError(401, "unauthorized", "No valid token was given.");
}

// ------------------------------------------------------------------ rendering

function fmtScore(hit) {
  return typeof hit.score === "number" ? hit.score.toFixed(3) : "";
}

// Where an item lives, to tell copies apart: the folder of a path, the host of a URL.
function sourceOf(hit) {
  if (typeof hit.path === "string") return hit.path;
  const column = state.stats && state.stats.image_column;
  const value = column && hit.metadata ? hit.metadata[column] : null;
  return typeof value === "string" ? value : null;
}

function placeOf(source) {
  if (!source || /^data:/i.test(source)) return null;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source) && !/^file:/i.test(source)) {
    try {
      const host = new URL(source).host;
      return host ? { head: "", tail: host } : null;
    } catch (err) {
      return null;
    }
  }
  const path = source.replace(/^file:\/\//i, "").replace(/\\/g, "/").replace(/\/+$/, "");
  const cut = path.lastIndexOf("/");
  if (cut < 0) return null;  // a bare file name: no folder to show
  const folder = path.slice(0, cut) || "/";
  // The last two folders stay whole; what comes before them is what gets cut short (CSS ellipsis).
  const parts = folder.split("/");
  const keep = parts.length > 3 ? 2 : parts.length;
  const head = parts.slice(0, parts.length - keep).join("/");
  const tail = parts.slice(parts.length - keep).join("/") || "/";
  return { head: head ? head + "/" : "", tail };
}

function showPlace(node, hit) {
  const source = sourceOf(hit);
  const place = placeOf(source);
  const el = node.querySelector(".folder");
  if (!place) return source;
  el.querySelector(".dir-head").textContent = place.head;
  el.querySelector(".dir-tail").textContent = place.tail;
  el.title = source;
  el.hidden = false;
  return source;
}

function card(hit, { onClick, badge, extra, note, selectable } = {}) {
  const node = $("card-template").content.firstElementChild.cloneNode(true);
  const img = node.querySelector("img");
  img.dataset.src = hit.thumbnail_url;
  img.src = withToken(hit.thumbnail_url);
  img.alt = hit.name;
  node.querySelector(".name").textContent = hit.name;
  node.querySelector(".name").title = hit.name;
  node.querySelector(".score").textContent = extra !== undefined ? extra : fmtScore(hit);
  const source = showPlace(node, hit);
  if (note) {
    const n = document.createElement("span");
    n.className = "note";
    n.textContent = note;
    n.title = note;
    node.querySelector(".meta").appendChild(n);
  }
  const open = node.querySelector(".open");
  open.href = withToken(hit.image_url);
  open.addEventListener("click", (ev) => ev.stopPropagation());
  node.dataset.id = String(hit.id);
  node.title = `${source || hit.name}: click for more like this`;
  if (badge) {
    const b = document.createElement("span");
    b.className = "badge";
    b.textContent = badge;
    node.appendChild(b);
  }
  if (selectable) makeSelectable(node, hit);
  const go = () => (onClick || moreLikeThis)(hit);
  node.addEventListener("click", go);
  node.addEventListener("keydown", (ev) => { if (ev.key === "Enter") go(); });
  return node;
}

function showMessage(el, kind, title, text) {
  el.replaceChildren();
  el.className = "message" + (kind === "error" ? " error" : "");
  const h = document.createElement("h3");
  h.textContent = title;
  const p = document.createElement("p");
  p.textContent = text;
  el.append(h, p);
  el.hidden = false;
}

function errorText(err) {
  if (err.code === "not_an_image") return ["That file is not an image", err.message];
  if (err.code === "too_large") return ["That image is too large", err.message];
  if (err.code === "url_refused") return ["That URL is not allowed", err.message];
  if (err.code === "fetch_failed") return ["The image could not be downloaded", err.message];
  if (err.code === "not_found") return ["Not found", err.message];
  if (err.code === "network") return ["Connection lost", err.message];
  if (err.code === "too_many_examples") return ["Too many examples", err.message];
  if (err.code === "bad_photo_filter") return ["That filter cannot be used", err.message];
  if (err.code === "bad_mode" || err.code === "no_fulltext") return ["That search mode cannot be used", err.message];
  return ["Something went wrong", err.message];
}

// What the numbers on the cards mean (README: _score is "higher is more similar" for every metric).
const SCORE_MEANS = {
  cosine: "Score = cosine similarity to the query: higher is more alike, 1.000 is identical.",
  l2: "Score = 1 / (1 + L2 distance) to the query: higher is more alike, 1.000 is identical.",
  l1: "Score = 1 / (1 + L1 distance) to the query: higher is more alike, 1.000 is identical.",
  inner_product: "Score = inner product with the query: higher is more alike (1.000 is identical for unit-length vectors).",
};
const DISTANCE_MEANS = {
  cosine: "d = cosine distance to the keeper (1 − cosine similarity): 0 is identical, smaller is more alike.",
  l2: "d = L2 distance to the keeper: 0 is identical, smaller is more alike.",
  l1: "d = L1 distance to the keeper: 0 is identical, smaller is more alike.",
  inner_product: "d = −(inner product with the keeper): smaller is more alike.",
};

const HYBRID_MEANS = "Score = the two matches fused (reciprocal rank fusion of the picture match and the "
  + "words' match in the tags): higher is better, comparable within this search only.";

function setLegends(metric) {
  state.scoreLegend = SCORE_MEANS[metric] || "Score: higher is more alike.";
  $("score-legend").textContent = state.scoreLegend;
  $("dupes-legend").textContent = DISTANCE_MEANS[metric] || "d = distance to the keeper: smaller is more alike.";
}

function setQueryBar(label, thumb) {
  $("query-bar").hidden = !label;
  $("query-label").textContent = label || "";
  const img = $("query-thumb");
  img.hidden = !thumb;
  if (thumb) img.src = thumb;
}

// ------------------------------------------------------------------ searching

// The photo filters of a query (taken when it runs, so "Load more" pages on with the same ones).
function filterParams(filters) {
  const params = new URLSearchParams();
  if (!filters) return params;
  if (filters.tag) params.append("tag", filters.tag);
  for (const name of ["since", "until", "camera", "near", "radius"]) {
    if (filters[name]) params.set(name, filters[name]);
  }
  return params;
}

function requestFor(query, offset) {
  const params = filterParams(query.filters);
  params.set("offset", String(offset));
  params.set("limit", String(PAGE));
  const page = params.toString();
  switch (query.kind) {
    case "text": {
      const mode = query.mode && query.mode !== "vector" ? `&mode=${encodeURIComponent(query.mode)}` : "";
      return [`/api/search?q=${encodeURIComponent(query.q)}${mode}&${page}`];
    }
    case "url": return [`/api/search/url?url=${encodeURIComponent(query.url)}&${page}`];
    case "item": return [`/api/items/${encodeURIComponent(query.id)}/similar?${page}`];
    case "examples": return [`/api/search/examples?${page}`, { method: "POST", body: examplesForm(query) }];
    case "image": {
      const form = new FormData();
      form.append("file", query.file, query.file.name || "image");
      return [`/api/search/image?${page}`, { method: "POST", body: form }];
    }
    default: return [`/api/items?${page}`];
  }
}

async function runSearch(query) {
  showView("search");
  query = { ...query, filters: currentFilters() };
  state.query = query;
  $("clear-filters").hidden = !filterParams(query.filters).toString();
  state.offset = 0;
  state.hasMore = false;
  const seq = ++state.seq;
  $("grid").replaceChildren();
  clearSelection();
  $("search-message").hidden = true;
  $("score-legend").hidden = true;
  $("score-legend").textContent = query.kind === "text" && query.mode === "hybrid" ? HYBRID_MEANS : state.scoreLegend;
  $("more").hidden = true;
  if (state.previewUrl && query.kind !== "image") {
    URL.revokeObjectURL(state.previewUrl);
    state.previewUrl = null;
  }
  if (query.kind === "text") setQueryBar(`“${query.q}”`);
  else if (query.kind === "url") setQueryBar(`Image at ${query.url}`, null);
  else if (query.kind === "image") setQueryBar(`Looks like ${query.file.name || "your image"}`, state.previewUrl);
  else if (query.kind === "item") setQueryBar(`More like ${query.name}`, withToken(query.thumbnail_url));
  else if (query.kind === "examples") setQueryBar(examplesLabel(query));
  else setQueryBar(null);
  document.body.dataset.state = "loading";
  await loadPage(seq);
}

async function loadPage(seq) {
  if (state.loading && seq === state.seq && state.offset > 0) return;
  state.loading = true;
  $("grid").classList.add("loading");
  try {
    const [path, options] = requestFor(state.query, state.offset);
    const body = await api(path, options);
    if (seq !== state.seq) return;
    const frag = document.createDocumentFragment();
    body.results.forEach((hit, i) => {
      const node = card(hit, { selectable: true });
      if (state.offset === 0 && i === 0 && state.query.kind !== "browse") node.classList.add("first");
      frag.appendChild(node);
    });
    $("grid").appendChild(frag);
    state.offset += body.results.length;
    state.hasMore = body.has_more;
    $("more").hidden = !state.hasMore;
    $("score-legend").hidden = !state.offset || !body.results.some((hit) => typeof hit.score === "number");
    if (state.offset === 0) emptyState();
    document.body.dataset.state = state.offset ? "results" : "empty";
  } catch (err) {
    if (seq !== state.seq) return;
    const [title, text] = errorText(err);
    showMessage($("search-message"), "error", title, text);
    document.body.dataset.state = "error";
  } finally {
    if (seq === state.seq) {
      state.loading = false;
      $("grid").classList.remove("loading");
    }
  }
}

function emptyState() {
  const q = state.query;
  if (filterParams(q.filters).toString()) {
    showMessage($("search-message"), "empty", "No matches",
      "No picture matches this search with these filters. Clear the filters (or pick another tag) to see more.");
  } else if (q.kind === "browse") {
    showMessage($("search-message"), "empty", "No images indexed yet",
      "Index a folder of pictures with the lookalike command, then reload this page.");
  } else if (q.kind === "text") {
    showMessage($("search-message"), "empty", "No matches", `Nothing in the index matched “${q.q}”.`);
  } else if (q.kind === "examples") {
    showMessage($("search-message"), "empty", "No matches", "Nothing else in the index looks like these examples.");
  } else {
    showMessage($("search-message"), "empty", "No matches", "Nothing in the index looks like this image.");
  }
}

function moreLikeThis(hit) {
  runSearch({ kind: "item", id: hit.id, name: hit.name, thumbnail_url: hit.thumbnail_url });
  window.scrollTo({ top: 0, behavior: "smooth" });
}

function searchFile(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    showView("search");
    showMessage($("search-message"), "error", "That file is not an image",
      `${file.name || "The file"} is ${file.type}; drop or pick a picture (JPEG, PNG, WebP, …).`);
    return;
  }
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = URL.createObjectURL(file);
  runSearch({ kind: "image", file });
}

const isUrl = (text) => /^https?:\/\/\S+$/i.test(text.trim());

function searchInput(text) {
  text = text.trim();
  if (!text) return runSearch({ kind: "browse" });
  if (isUrl(text)) return runSearch({ kind: "url", url: text });
  return runSearch({ kind: "text", q: text, mode: state.mode });
}

// ------------------------------------------------------------------ tags, filters and the search mode

const FILTER_INPUTS = ["since", "until", "camera", "near", "radius"];

// The filters as they stand now: the tag picked and what the filter inputs hold.
function currentFilters() {
  const filters = { tag: state.tag };
  for (const name of FILTER_INPUTS) {
    const value = $(name).value.trim();
    filters[name] = value && !$(name).closest("label").hidden ? value : null;
  }
  return filters;
}

function rerun() {
  runSearch(state.query || { kind: "browse" });
}

function showFilters(stats) {
  const supported = new Set(Array.isArray(stats.photo_filters) ? stats.photo_filters : []);
  let any = false;
  for (const name of FILTER_INPUTS) {
    const on = supported.has(name);
    $(name).closest("label").hidden = !on;
    any = any || on;
  }
  $("mode-field").hidden = !stats.fulltext_column;
  $("filters").hidden = !any && !stats.fulltext_column;
  $("filter-apply").hidden = !any;
}

async function loadFacets() {
  let body;
  try {
    body = await api("/api/tags?limit=20");
  } catch (err) {
    return;  // facets are a help, not the page: the search works without them
  }
  const box = $("facets");
  box.replaceChildren();
  for (const facet of body.tags || []) {
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "facet";
    chip.dataset.tag = String(facet.tag);
    chip.setAttribute("aria-pressed", String(state.tag === facet.tag));
    const name = document.createElement("span");
    name.textContent = String(facet.tag);
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = String(facet.count);
    chip.append(name, count);
    chip.title = `Only pictures tagged “${facet.tag}” (click again to show all)`;
    chip.addEventListener("click", () => pickTag(String(facet.tag)));
    box.appendChild(chip);
  }
  box.hidden = !box.children.length;
}

function pickTag(tag) {
  state.tag = state.tag === tag ? null : tag;
  $("facets").querySelectorAll(".facet").forEach((chip) => {
    chip.setAttribute("aria-pressed", String(chip.dataset.tag === state.tag));
  });
  rerun();
}

$("filters").addEventListener("submit", (ev) => {
  ev.preventDefault();
  rerun();
});
$("clear-filters").addEventListener("click", () => {
  FILTER_INPUTS.forEach((name) => { $(name).value = ""; });
  state.tag = null;
  $("facets").querySelectorAll(".facet").forEach((chip) => chip.setAttribute("aria-pressed", "false"));
  rerun();
});
$("mode").addEventListener("change", () => {
  state.mode = $("mode").value === "hybrid" ? "hybrid" : "vector";
  if (state.query && state.query.kind === "text") runSearch({ ...state.query, mode: state.mode });
});

// ------------------------------------------------------------------ several examples

// A query's examples: {ids: [{id, name}], texts: [string], files: [File]} for each side.
const noExamples = () => ({ ids: [], texts: [], files: [] });

function makeSelectable(node, hit) {
  const pick = node.querySelector(".pick");
  const box = pick.querySelector("input");
  pick.hidden = false;
  box.checked = state.selected.has(String(hit.id));
  node.classList.toggle("picked", box.checked);
  // picking is not opening: the card's own click is "more like this"
  pick.addEventListener("click", (ev) => ev.stopPropagation());
  pick.addEventListener("keydown", (ev) => ev.stopPropagation());
  box.addEventListener("change", () => {
    if (box.checked) state.selected.set(String(hit.id), hit);
    else state.selected.delete(String(hit.id));
    node.classList.toggle("picked", box.checked);
    updateSelectBar();
  });
}

// What the current query contributes as examples, or null when it cannot be one (browsing, a URL).
function currentExamples() {
  const q = state.query || { kind: "browse" };
  const positive = noExamples();
  let negative = noExamples();
  if (q.kind === "text") positive.texts.push(q.q);
  else if (q.kind === "item") positive.ids.push({ id: q.id, name: q.name });
  else if (q.kind === "image") positive.files.push(q.file);
  else if (q.kind === "examples") {
    const copy = (side) => ({ ids: [...side.ids], texts: [...side.texts], files: [...side.files] });
    return { positive: copy(q.positive), negative: copy(q.negative) };
  } else return null;
  return { positive, negative };
}

function updateSelectBar() {
  const n = state.selected.size;
  $("select-bar").hidden = n === 0;
  $("grid").classList.toggle("picking", n > 0);
  $("select-count").textContent = `${n} selected`;
  $("more-like-these").textContent = n === 1 ? "More like this" : "More like these";
  const less = $("less-like-these");
  less.textContent = n === 1 ? "Less like this" : "Less like these";
  less.disabled = currentExamples() === null;
  less.title = less.disabled
    ? "Search for something first (words, an image or a picture's matches): then push away from these"
    : "Keep this search, and push it away from the selected pictures";
}

function clearSelection() {
  state.selected.clear();
  document.querySelectorAll("#grid .card.picked").forEach((node) => {
    node.classList.remove("picked");
    node.querySelector(".pick input").checked = false;
  });
  updateSelectBar();
}

function picked() {
  return Array.from(state.selected.values(), (hit) => ({ id: hit.id, name: hit.name }));
}

function moreLikeThese() {
  const positive = noExamples();
  positive.ids = picked();
  runSearch({ kind: "examples", positive, negative: noExamples() });
}

function lessLikeThese() {
  const base = currentExamples();
  if (!base) return;
  const known = new Set(base.negative.ids.map((x) => String(x.id)));
  base.negative.ids.push(...picked().filter((x) => !known.has(String(x.id))));
  runSearch({ kind: "examples", positive: base.positive, negative: base.negative });
}

function examplesForm(query) {
  const form = new FormData();
  for (const [side, ex] of [["positive", query.positive], ["negative", query.negative]]) {
    ex.ids.forEach((x) => form.append(`${side}_id`, String(x.id)));
    ex.texts.forEach((t) => form.append(`${side}_text`, t));
    ex.files.forEach((f) => form.append(`${side}_image`, f, f.name || "image"));
  }
  return form;
}

function examplesLabel(query) {
  const describe = (side) => [
    ...side.texts.map((t) => `“${t}”`),
    ...side.files.map((f) => f.name || "your image"),
    ...side.ids.map((x) => x.name),
  ];
  const like = describe(query.positive);
  const unlike = describe(query.negative);
  const short = (names) => (names.length > 3 ? `${names.slice(0, 3).join(", ")} and ${names.length - 3} more` : names.join(", "));
  return `Like ${short(like)}` + (unlike.length ? ` · not like ${short(unlike)}` : "");
}

$("more-like-these").addEventListener("click", () => {
  moreLikeThese();
  window.scrollTo({ top: 0, behavior: "smooth" });
});
$("less-like-these").addEventListener("click", () => {
  lessLikeThese();
  window.scrollTo({ top: 0, behavior: "smooth" });
});
$("clear-selection").addEventListener("click", clearSelection);

// ------------------------------------------------------------------ duplicates

async function loadDupes(reset) {
  const list = $("dupes-list");
  const msg = $("dupes-message");
  if (reset) {
    state.dupes.offset = 0;
    list.replaceChildren();
  }
  const seq = ++state.dupes.seq;
  msg.hidden = true;
  $("dupes-more").hidden = true;
  const params = new URLSearchParams({ offset: state.dupes.offset, limit: 20, exact: $("exact").checked });
  if ($("similar").checked) params.set("similar", "true");
  const threshold = $("threshold").value.trim();
  if (threshold) params.set("threshold", threshold);
  list.classList.add("loading");
  document.body.dataset.state = "loading";
  try {
    const body = await api(`/api/duplicates?${params}`);
    if (seq !== state.dupes.seq) return;
    body.groups.forEach((group, i) => list.appendChild(groupNode(group, state.dupes.offset + i + 1)));
    state.dupes.offset += body.groups.length;
    state.dupes.hasMore = body.has_more;
    state.dupes.loaded = true;
    $("dupes-more").hidden = !body.has_more;
    if (!state.dupes.offset) {
      showMessage(msg, "empty", "No duplicates found",
        "No two images are close enough to count as duplicates. Raise the distance to find near-duplicates.");
    }
    document.body.dataset.state = state.dupes.offset ? "dupes" : "empty";
  } catch (err) {
    if (seq !== state.dupes.seq) return;
    const [title, text] = err.status === 501 ? ["Duplicates are not available", err.message] : errorText(err);
    showMessage(msg, "error", title, text);
    document.body.dataset.state = "error";
  } finally {
    if (seq === state.dupes.seq) list.classList.remove("loading");
  }
}

const GROUP_KINDS = { "identical file": "identical", "same picture": "same", "similar": "similar" };

function groupNode(group, n) {
  const section = document.createElement("section");
  section.className = "group";
  const header = document.createElement("header");
  const title = document.createElement("span");
  title.textContent = `Group ${n}`;
  header.appendChild(title);
  if (typeof group.kind === "string" && group.kind) {
    const kind = document.createElement("span");
    kind.className = "kind" + (GROUP_KINDS[group.kind] ? " kind-" + GROUP_KINDS[group.kind] : "");
    kind.textContent = group.kind;
    header.appendChild(kind);
  }
  const small = document.createElement("small");
  let summary = `${group.size} images · keep 1, ${group.size - 1} can go`;
  if (typeof group.diameter === "number") summary += ` · spread d ${group.diameter.toFixed(3)}`;
  small.textContent = summary;
  header.appendChild(small);
  const members = document.createElement("div");
  members.className = "members";
  for (const m of group.members) {
    const extra = m.keeper ? "" : (typeof m.distance === "number" ? `d ${m.distance.toFixed(3)}` : "");
    const match = typeof m.match === "string" && m.match !== "keeper" ? m.match : "";
    const detail = typeof m.detail === "string" ? m.detail : "";
    const note = [match, detail].filter(Boolean).join(" · ");
    const node = card(m, { badge: m.keeper ? "Keep" : null, extra, note });
    if (m.keeper) node.classList.add("keeper");
    members.appendChild(node);
  }
  section.append(header, members);
  return section;
}

// ------------------------------------------------------------------ views and input

function showView(view) {
  // The search box belongs to the Search view: no stale search text over the duplicate groups.
  $("search-form").hidden = view !== "search";
  $("view-search").hidden = view !== "search";
  $("view-dupes").hidden = view !== "dupes";
  document.querySelectorAll(".tab").forEach((tab) => {
    const on = tab.dataset.view === view;
    tab.classList.toggle("active", on);
    tab.setAttribute("aria-pressed", String(on));
  });
  const hash = view === "dupes" ? "#duplicates" : "";
  if (location.hash !== hash) history.replaceState(null, "", location.pathname + location.search + hash);
  if (view === "dupes" && !state.dupes.loaded) loadDupes(true);
}

document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => showView(tab.dataset.view)));

$("search-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  searchInput($("q").value);
});
$("pick").addEventListener("click", () => $("file").click());
$("file").addEventListener("change", () => {
  searchFile($("file").files[0]);
  $("file").value = "";
});
$("clear-query").addEventListener("click", () => {
  $("q").value = "";
  runSearch({ kind: "browse" });
});
$("more").addEventListener("click", () => loadPage(state.seq));
$("dupes-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  loadDupes(true);
});
$("dupes-more").addEventListener("click", () => loadDupes(false));
$("similar").addEventListener("change", () => loadDupes(true));

// Paste an image (or an image URL outside the search box) anywhere on the page.
document.addEventListener("paste", (ev) => {
  const items = Array.from(ev.clipboardData ? ev.clipboardData.items : []);
  const file = items.find((it) => it.kind === "file" && it.type.startsWith("image/"));
  if (file) {
    ev.preventDefault();
    searchFile(file.getAsFile());
    return;
  }
  const text = ev.clipboardData ? ev.clipboardData.getData("text/plain") : "";
  if (isUrl(text) && document.activeElement !== $("q")) {
    ev.preventDefault();
    $("q").value = text.trim();
    searchInput(text);
  }
});

// Drag and drop: a file, or an image dragged from another page (its URL).
let dragDepth = 0;
const hasPayload = (ev) => Array.from(ev.dataTransfer ? ev.dataTransfer.types : []).some((t) => t === "Files" || t === "text/uri-list");
document.addEventListener("dragenter", (ev) => {
  if (!hasPayload(ev)) return;
  ev.preventDefault();
  dragDepth++;
  $("drop-overlay").hidden = false;
});
document.addEventListener("dragover", (ev) => { if (hasPayload(ev)) ev.preventDefault(); });
document.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) $("drop-overlay").hidden = true;
});
document.addEventListener("drop", (ev) => {
  ev.preventDefault();
  dragDepth = 0;
  $("drop-overlay").hidden = true;
  const file = ev.dataTransfer.files && ev.dataTransfer.files[0];
  if (file) return searchFile(file);
  const url = (ev.dataTransfer.getData("text/uri-list") || ev.dataTransfer.getData("text/plain") || "").split("\n")[0];
  if (isUrl(url)) {
    $("q").value = url.trim();
    searchInput(url);
  }
});

// Load the next page when the bottom comes into view.
new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting) && state.hasMore && !state.loading && !$("view-search").hidden) {
    loadPage(state.seq);
  }
}, { rootMargin: "600px" }).observe($("more"));

// ------------------------------------------------------------------ start

async function start() {
  const params = new URLSearchParams(location.search);
  if (params.has("token")) {
    state.token = params.get("token");
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
  }
  try {
    state.stats = await api("/api/stats");
    const s = state.stats;
    setLegends(s.metric);
    showFilters(s);
    $("stats").textContent = `${s.rows.toLocaleString()} images · ${s.model || "no model"}`;
    if (!s.duplicates_available) document.querySelector('[data-view="dupes"]').title = "Not available on this server";
  } catch (err) {
    const [title, text] = errorText(err);
    showMessage($("search-message"), "error", title, text);
    document.body.dataset.state = "error";
    return;
  }
  if (state.stats.tag_column) loadFacets();
  const q = params.get("q");
  if (location.hash === "#duplicates") showView("dupes");
  else if (q) {
    $("q").value = q;
    searchInput(q);
  } else runSearch({ kind: "browse" });
}

start();
