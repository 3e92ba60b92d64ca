// Renders the OpenAPI document as a plain reference page. Served from the package (no CDN), so the
// docs work offline and under the page's strict Content-Security-Policy (no inline script or style).
"use strict";

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function resolveRef(schema, doc) {
  if (schema && schema.$ref) {
    const name = schema.$ref.split("/").pop();
    return { name, schema: (doc.components && doc.components.schemas && doc.components.schemas[name]) || {} };
  }
  return { name: null, schema: schema || {} };
}

function typeOf(schema, doc) {
  const { name, schema: s } = resolveRef(schema, doc);
  if (name) return name;
  if (s.anyOf) return s.anyOf.map((x) => typeOf(x, doc)).join(" | ");
  if (s.type === "array") return `array of ${typeOf(s.items, doc)}`;
  return s.type || "any";
}

function renderOperation(path, method, op, doc) {
  const section = el("section", null, "operation");
  const head = el("h2");
  head.append(el("code", method.toUpperCase(), "method"), " ", el("code", path, "path"));
  section.append(head);
  if (op.summary) section.append(el("p", op.summary, "summary"));
  if (op.description && op.description !== op.summary) section.append(el("p", op.description));
  const params = op.parameters || [];
  if (params.length) {
    const table = el("table", null, "params");
    const row = table.insertRow();
    ["parameter", "in", "type", "required", "description"].forEach((h) => row.append(el("th", h)));
    for (const p of params) {
      const r = table.insertRow();
      r.append(el("td", p.name), el("td", p.in), el("td", typeOf(p.schema, doc)),
        el("td", p.required ? "yes" : "no"), el("td", p.description || (p.schema && p.schema.description) || ""));
    }
    section.append(table);
  }
  if (op.requestBody) {
    const kinds = Object.keys(op.requestBody.content || {});
    section.append(el("p", `Request body: ${kinds.join(", ")}`));
  }
  const responses = el("ul", null, "responses");
  for (const [code, response] of Object.entries(op.responses || {})) {
    const media = response.content && response.content["application/json"];
    const shape = media && media.schema ? ` (${typeOf(media.schema, doc)})` : "";
    responses.append(el("li", `${code}: ${response.description || ""}${shape}`));
  }
  section.append(responses);
  return section;
}

async function main() {
  const status = document.getElementById("docs-status");
  const target = document.getElementById("operations");
  try {
    const response = await fetch(document.body.dataset.openapi, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`the OpenAPI document answered ${response.status}`);
    const doc = await response.json();
    document.title = `${doc.info.title} ${doc.info.version} API`;
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const [method, op] of Object.entries(item)) target.append(renderOperation(path, method, op, doc));
    }
    status.textContent = doc.info.summary || "";
  } catch (err) {
    status.textContent = `Could not load the API description: ${err.message}`;
  }
}

main();
