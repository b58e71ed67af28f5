// The review page: renders window.FACETAG_REVIEW (data.js, written by facetag.review).
// Sections are built as they scroll into view and faces a page at a time, so that the page
// opens at once for any number of faces; document.documentElement.dataset.ready marks the first render.
(function () {
  "use strict";
  const D = window.FACETAG_REVIEW;
  const FACES_PER_PAGE = 60, SECTIONS_PER_BATCH = 12;
  const DOUBT = 0.05; // a distance this close to the threshold is highlighted as doubtful
  const F = { ID: 0, PHOTO: 1, L: 2, T: 3, R: 4, B: 5, DIST: 6 };
  const $ = (id) => document.getElementById(id);

  const { el, fmt, listing, showPhoto, pagedTiles } = window.FacetagPage;
  const thumb = (id) => "thumbs/" + id.slice(0, 2) + "/" + id + ".jpg";
  const shellQuote = (s) => /^[A-Za-z0-9_.,:@%+=\/-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'";
  const nameCmd = (what, id, name) => `facetag name ${D.store_shell} --${what} ${id} --as ${shellQuote(name || "NAME")}`;
  const notCmd = (id, name) => `facetag name ${D.store_shell} --face ${id} --not ${shellQuote(name)}`;
  const title = (s) => s.kind === "identity" ? s.name : s.kind === "cluster" ? "Cluster " + s.name
    : s.kind === "unsure" ? "Too unsure to group (low quality)" : "Unknown, in no cluster";

  function toast(text) {
    const t = $("toast");
    t.textContent = text; t.hidden = false;
    clearTimeout(toast.timer); toast.timer = setTimeout(() => { t.hidden = true; }, 1600);
  }
  function copy(text) {
    const fallback = () => {
      const area = el("textarea", {}, text);
      document.body.append(area); area.select(); document.execCommand("copy"); area.remove();
    };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).catch(fallback);
    else fallback();
    toast("Copied: " + text);
  }
  function copyIcon() { // two overlapping sheets, drawn: not every system font has a copy glyph
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 16 16"); svg.setAttribute("width", "13"); svg.setAttribute("height", "13");
    for (const [x, y] of [[5, 1], [1, 5]]) {
      const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      for (const [k, v] of Object.entries({ x, y, width: 10, height: 10, rx: 2, fill: x === 1 ? "#fff" : "none", stroke: "currentColor", "stroke-width": 1.6 })) r.setAttribute(k, v);
      svg.append(r);
    }
    return svg;
  }
  const copyButton = (getText, label) => el("button", { class: "copy", title: "Copy: " + getText(), onclick: (e) => { e.stopPropagation(); copy(getText()); } }, label || copyIcon());

  // Summary, meta line, navigation
  const S = D.summary;
  $("meta").textContent = `store ${D.store} · model ${D.model_id.split(":")[0]} · threshold ${D.threshold} · written ${D.generated.replace("T", " ")}`;
  const cards = [["photos", S.photos, ""], ["faces", S.faces, ""], ["identified", S.identified, "known"],
    ["unknown", S.unknown, "unknown"], ["people", S.identities, "known"],
    ["clusters", S.clusters == null ? "–" : S.clusters, "unknown"],
    ["without a face", S.no_face, ""], ["failed", S.failed, S.failed ? "bad" : ""]];
  for (const [k, v, cls] of cards)
    $("summary").append(el("div", { class: "card " + cls, "data-key": k }, el("div", { class: "v", text: typeof v === "number" ? fmt(v) : v }), el("div", { class: "k", text: k })));

  const nav = $("nav");
  let lastGroup = null;
  D.sections.forEach((s, i) => {
    const group = s.kind === "identity" ? "People" : "Unknown faces";
    if (group !== lastGroup) { nav.append(el("li", { class: "group", text: group })); lastGroup = group; }
    nav.append(el("li", { "data-filter": title(s).toLowerCase() },
      el("a", { href: "#s" + i, onclick: (e) => { e.preventDefault(); goTo(i); } },
        el("span", { text: title(s) }), el("span", { class: "n", text: fmt(s.faces.length) }))));
  });
  nav.append(el("li", { class: "group", text: "Files" }),
    el("li", {}, el("a", { href: "#no-face" }, el("span", { text: "Without a face" }), el("span", { class: "n", text: fmt(D.no_face.length) }))),
    el("li", {}, el("a", { href: "#failed" }, el("span", { text: "Failed" }), el("span", { class: "n", text: fmt(D.failed.length) }))));
  $("filter").addEventListener("input", (e) => {
    const q = e.target.value.trim().toLowerCase();
    for (const li of nav.querySelectorAll("li[data-filter]")) li.hidden = q && !li.dataset.filter.includes(q);
  });

  // Face sections
  let rendered = 0;
  function tile(s, si, fi) {
    const f = s.faces[fi], dist = f[F.DIST];
    const doubt = Math.abs(dist - D.threshold) <= DOUBT;
    const cmd = () => s.kind === "identity" ? notCmd(f[F.ID], s.name) : nameCmd("face", f[F.ID]);
    return el("div", { class: "tile" + (doubt ? " doubt" : ""), "data-face": f[F.ID] },
      el("img", { src: thumb(f[F.ID]), loading: "lazy", width: 96, height: 96, alt: title(s), onclick: () => openViewer(si, fi) }),
      el("div", { class: "d" }, el("span", { class: "dist", title: "distance to the nearest person (threshold " + D.threshold + ")", text: dist.toFixed(3) }),
        copyButton(cmd)));
  }
  function section(s, si) {
    const grid = el("div", { class: "grid" });
    const header = el("header", {}, el("h2", { text: title(s) }), el("span", { class: "tag " + s.kind, text: s.kind === "identity" ? "person" : s.kind }),
      el("span", { class: "count", text: fmt(s.faces.length) + (s.faces.length === 1 ? " face" : " faces") }));
    if (s.kind === "cluster") {
      const input = el("input", { type: "text", placeholder: "Who is this?", "aria-label": "name for cluster " + s.name });
      const cmd = el("code", { class: "cmd", text: nameCmd("cluster", s.name) });
      input.addEventListener("input", () => { cmd.textContent = nameCmd("cluster", s.name, input.value.trim()); });
      header.append(el("div", { class: "namebar" }, input, cmd, copyButton(() => cmd.textContent, "copy")));
    }
    const box = el("section", { class: "faces", id: "s" + si, "data-kind": s.kind, "data-name": s.name, "data-count": s.faces.length }, header, grid);
    box.append(pagedTiles(grid, s.faces.length, (i) => tile(s, si, i), FACES_PER_PAGE));
    return box;
  }
  function renderUpTo(n) {
    const frag = document.createDocumentFragment();
    for (; rendered < Math.min(n, D.sections.length); rendered++) frag.append(section(D.sections[rendered], rendered));
    $("sections").append(frag);
  }
  function goTo(i) { renderUpTo(i + SECTIONS_PER_BATCH); $("s" + i).scrollIntoView({ block: "start" }); window.scrollBy(0, -52); }
  new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) renderUpTo(rendered + SECTIONS_PER_BATCH); },
    { rootMargin: "1200px" }).observe($("more-sections"));

  listing("no-face", "Photos without a face", D.no_face, "Every photo read had a face.");
  listing("failed", "Files that could not be read", D.failed, "No file failed.");

  // The viewer: the source photo with the face's box
  let current = null;
  function openViewer(si, fi) {
    const s = D.sections[si], f = s.faces[fi], p = D.photos[f[F.PHOTO]];
    current = [si, fi];
    showPhoto(p[1], p[0], p[2], p[3], f.slice(F.L, F.B + 1));
    const d = $("details");
    d.replaceChildren(
      el("div", { class: "tag " + s.kind, text: s.kind === "identity" ? "person" : s.kind }),
      el("h3", { text: title(s) }),
      el("div", { text: `distance ${f[F.DIST].toFixed(4)} (threshold ${D.threshold}) · face ${fi + 1} of ${fmt(s.faces.length)}` }),
      el("p", { class: "path" }, el("a", { href: p[1], target: "_blank", text: p[0] })),
      el("div", { text: `box ${f[F.L]}, ${f[F.T]}, ${f[F.R]}, ${f[F.B]} · face id ${f[F.ID]}` }));
    const commands = s.kind === "identity"
      ? [["Not " + s.name + "?", notCmd(f[F.ID], s.name)], ["Someone else:", nameCmd("face", f[F.ID])]]
      : [["Name this face:", nameCmd("face", f[F.ID])]].concat(s.kind === "cluster" ? [["Name the whole cluster:", nameCmd("cluster", s.name)]] : []);
    for (const [label, cmd] of commands)
      d.append(el("div", { class: "cmdrow" }, el("div", { text: label }), el("code", { class: "cmd", text: cmd }), copyButton(() => cmd, "copy")));
    $("viewer").hidden = false;
  }
  function step(by) {
    if (!current) return;
    const [si, fi] = current, n = D.sections[si].faces.length;
    openViewer(si, (fi + by + n) % n);
  }
  const closeViewer = () => { $("viewer").hidden = true; $("photo").removeAttribute("src"); current = null; };
  $("viewer-close").onclick = closeViewer;
  $("viewer").addEventListener("click", (e) => { if (e.target === $("viewer")) closeViewer(); });
  $("prev").onclick = () => step(-1);
  $("next").onclick = () => step(1);
  document.addEventListener("keydown", (e) => {
    if ($("viewer").hidden) return;
    if (e.key === "Escape") closeViewer(); else if (e.key === "ArrowLeft") step(-1); else if (e.key === "ArrowRight") step(1);
  });

  renderUpTo(SECTIONS_PER_BATCH);
  window.FACETAG_READY_MS = performance.now();
  document.documentElement.dataset.ready = "1";
})();
