// What the review page (review.js, static) and the review server's page (facetag.web's app.js) share:
// window.FacetagPage.el builds an element (text always as textContent), fmt formats a count, listing fills a
// table of photos and reasons a page of rows at a time, pagedTiles a section's faces, showPhoto shows a face
// in its photo.
window.FacetagPage = (function () {
  "use strict";
  const ROWS_PER_PAGE = 100;
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === "class") e.className = attrs[k];
      else if (k === "text") e.textContent = attrs[k];
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    for (const c of children) if (c != null) e.append(c);
    return e;
  }
  const fmt = (n) => n.toLocaleString("en-US");

  function listing(id, heading, rows, empty) {
    const box = $(id), table = el("table");
    box.append(el("h2", { text: `${heading} (${fmt(rows.length)})` }));
    if (!rows.length) { box.append(el("p", { class: "empty", text: empty })); return; }
    let shown = 0;
    const more = el("button", { class: "showmore" });
    const page = () => {
      for (const end = Math.min(rows.length, shown + ROWS_PER_PAGE); shown < end; shown++)
        table.append(el("tr", {}, el("td", { text: rows[shown][0] }), el("td", { text: rows[shown][1] || "" })));
      more.textContent = `Show ${fmt(Math.min(ROWS_PER_PAGE, rows.length - shown))} more`;
      more.hidden = shown >= rows.length;
    };
    more.addEventListener("click", page);
    box.append(table, more);
    page();
  }

  // The viewer's photo with the face's box (left, top, right, bottom) drawn over it; the photo's displayed
  // size, where known, is used rather than the file's (EXIF rotation).
  function showPhoto(src, path, width, height, [left, top, right, bottom]) {
    const img = $("photo"), box = $("box");
    $("no-preview").hidden = true; $("frame").hidden = false; box.hidden = true;
    img.onload = () => {
      const w = width || img.naturalWidth, h = height || img.naturalHeight;
      Object.assign(box.style, { left: 100 * left / w + "%", top: 100 * top / h + "%",
        width: 100 * (right - left) / w + "%", height: 100 * (bottom - top) / h + "%" });
      box.hidden = false;
    };
    img.onerror = () => {
      $("frame").hidden = true; $("no-preview").hidden = false;
      $("no-preview").textContent = "The browser cannot show this file here (moved, remote, or a format it does not read): " + path;
    };
    img.src = src;
  }

  // A section's faces a page at a time: ``tile(i)`` builds the i-th of ``count`` into ``grid``; the "Show
  // more" button it returns adds the next page.
  function pagedTiles(grid, count, tile, perPage = 60) {
    let shown = 0;
    const more = el("button", { class: "showmore" });
    const page = () => {
      const end = Math.min(count, shown + perPage), frag = document.createDocumentFragment();
      for (; shown < end; shown++) frag.append(tile(shown));
      grid.append(frag);
      more.textContent = `Show ${fmt(Math.min(perPage, count - shown))} more of ${fmt(count - shown)}`;
      more.hidden = shown >= count;
    };
    more.addEventListener("click", page);
    page();
    return more;
  }
  return { el, fmt, listing, showPhoto, pagedTiles };
})();
